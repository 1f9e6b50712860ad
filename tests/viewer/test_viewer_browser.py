"""The clinician viewer end to end: a real uvicorn server, a real store and model, headless Chromium.

The seed KG and the demo cohort go into an embedded store (gold findings for the training
patients; the shown patient's report goes through the real extractor), a model is trained with
``Engine.train`` and saved where the server reads it, and the server runs with one clinician key.
Chromium (Debian's, driven by Playwright) opens the patient's page, enters the key, selects a
diagnosis and checks what a clinician must see. The screenshot is saved under the test's
``tmp_path`` and copied to ``.kgdx/screenshots/``.

Skips only when Playwright or Chromium is missing (``make test`` installs Chromium as root).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.viewer.browser import (
    SCREENSHOTS,
    api,
    browser_or_skip,
    desktop_page,
    explained,
    keep_screenshots,
    launch,
    open_with_key,
    serve_viewer,
)

# P014: pneumonia; its report has present, absent ("Negative for mass."), possible and historical
# findings
SHOWN = "P014"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    """A trained store served by uvicorn on a loopback port with one clinician key."""
    sync_playwright = browser_or_skip()
    from api.auth import key_entry, new_key
    from api.engine import Engine
    from data.cohort import load_cohort
    from graph.settings import Settings

    folder = tmp_path_factory.mktemp("viewer")
    settings = Settings(home=folder, db_path=folder / "kg.lbug")
    cases = load_cohort()
    shown = next(c for c in cases if c.patient.id == SHOWN)
    others = [c for c in cases if c.patient.id != SHOWN]
    with Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
        engine.ingest(
            [c.patient.model_copy(update={"findings": c.gold_findings}) for c in others],
            extract=False,
        )
        (patient,) = engine.ingest([shown.patient])  # the report through the real extractor
        engine.train(
            patient_ids=[c.patient.id for c in others], save_to=settings.resolved_model_dir
        )

    key, ingest_key = new_key(), new_key()
    entries = [
        key_entry("viewer-test", "clinician", key),
        key_entry("loader", "ingest", ingest_key),
    ]
    env = {
        "KGDX_HOME": str(folder),
        "KGDX_DB_PATH": str(folder / "kg.lbug"),
        "KGDX_MODEL_DIR": str(settings.resolved_model_dir),
    }
    with serve_viewer(folder, env, entries) as running:
        yield running | {
            "key": key,
            "ingest_key": ingest_key,
            "patient": patient,
            "playwright": sync_playwright,
        }


def test_patient_page_shows_findings_diagnoses_and_their_paths(served, tmp_path) -> None:
    base, key, patient = served["base"], served["key"], served["patient"]
    sentences = {f.provenance.sentence for f in patient.findings}
    absent = [f for f in patient.findings if f.assertion.status == "absent"]
    present = [f for f in patient.findings if f.assertion.status == "present"]
    assert absent and present  # the report has both, or the style check below means nothing

    with served["playwright"]() as playwright:
        browser = launch(playwright)
        page, console = desktop_page(browser)
        requests = []
        page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))

        with explained(page, console, served, tmp_path):
            page.goto(f"{base}/patients/{SHOWN}")
            # the data calls answer 401 without a key: the page asks for one
            page.wait_for_selector("#key-panel:not([hidden])", timeout=20_000)
            page.fill("#key-input", key)
            page.press("#key-input", "Enter")
            page.wait_for_selector("button.dx", timeout=60_000)

            # the key: in this tab's sessionStorage, in every data call's header, in no URL
            assert page.evaluate("sessionStorage.getItem('kgdx.apiKey')") == key
            assert page.evaluate("localStorage.length") == 0
            calls = [(url, auth) for url, auth in requests if "/v1/" in url]
            assert calls and all(auth == f"Bearer {key}" for url, auth in calls[-3:])
            assert all(key not in url for url, _ in requests)
            assert key not in page.url

            # the report with its findings marked; absent looks different from present, not by
            # colour alone: a strike-through and a text tag
            style = "e => { const s = getComputedStyle(e); return [s.textDecorationLine, s.textDecorationStyle, s.backgroundColor]; }"  # noqa: E501
            present_mark = page.locator('#reports mark.finding[data-status="present"]').first
            absent_mark = page.locator('#reports mark.finding[data-status="absent"]').first
            present_style = present_mark.evaluate(style)
            absent_style = absent_mark.evaluate(style)
            assert "line-through" in absent_style[0] and "line-through" not in present_style[0]
            assert present_style != absent_style
            assert absent_mark.locator(".tag").inner_text().strip().lower() == "absent"
            marked = page.locator("#reports mark.finding").count()
            assert marked >= len({(f.provenance.start, f.provenance.end) for f in patient.findings})
            assert page.locator("#legend mark.finding").count() >= 4

            # ranked diagnoses: focusable buttons with a probability bar each, most probable first
            buttons = page.locator("button.dx")
            count = buttons.count()
            assert count >= 2
            probabilities = [
                float(buttons.nth(i).locator('[role="meter"]').get_attribute("aria-valuenow"))
                for i in range(count)
            ]
            assert probabilities == sorted(probabilities, reverse=True)
            assert all(0.0 <= p <= 1.0 for p in probabilities)

            # choose, with the keyboard, a diagnosis that has paths and is not selected yet
            with_paths = [
                i
                for i in range(count)
                if not buttons.nth(i).locator(".dx-paths").inner_text().startswith("0 ")
            ]
            assert with_paths, "no diagnosis of the shown patient has an explanation path"
            chosen = next((i for i in with_paths if i > 0), with_paths[0])
            buttons.nth(chosen).focus()
            page.keyboard.press("Enter")
            assert buttons.nth(chosen).get_attribute("aria-pressed") == "true"
            name = buttons.nth(chosen).locator(".dx-name").inner_text()
            assert name in page.locator("#selected-name").inner_text()

            # its paths: drawn by cytoscape (dagre layout) and listed with one button per step
            assert page.locator("#path-graph canvas").count() > 0
            drawn = page.evaluate(
                "() => { const c = document.querySelector('#path-graph');"
                " return c && c.querySelectorAll('canvas').length; }"
            )
            assert drawn
            paths = page.locator("#path-list > li")
            assert paths.count() >= 1
            steps = paths.first.locator("button.step")
            assert steps.count() >= 2

            # the evidence of each step: the report sentence for the finding, the KG source after
            steps.first.click()
            detail = page.locator("#step-detail")
            first = detail.inner_text()
            assert "Sentence" in first
            assert any(sentence and sentence in first for sentence in sentences)
            steps.last.click()
            assert "KG source" in detail.inner_text()
            # the drawing: patient -> findings -> (KG concepts) -> disease; hovering a drawn edge
            # shows its step's evidence (cytoscape's own events, at the edge's place on screen)
            steps.first.click()  # shows the finding's evidence, no KG source
            assert "KG source" not in detail.inner_text()
            drawing = page.evaluate(
                """() => {
                  const cy = document.querySelector('#path-graph')._cyreg.cy;
                  const edge = cy.edges().filter(e => e.target().hasClass('disease'))[0];
                  const mid = edge.renderedMidpoint();
                  const box = cy.container().getBoundingClientRect();
                  return {roles: cy.nodes().map(n => n.classes()[0]), edges: cy.edges().length,
                          x: box.left + mid.x, y: box.top + mid.y};
                }"""
            )
            assert {"patient", "finding", "disease"} <= set(drawing["roles"])
            assert drawing["roles"].count("patient") == 1 and drawing["roles"].count("disease") == 1
            assert drawing["edges"] >= 2
            page.mouse.move(drawing["x"] - 30, drawing["y"] - 30)
            page.mouse.move(drawing["x"], drawing["y"], steps=5)
            # polled from here: wait_for_function evaluates a string, which the page's CSP refuses
            deadline = time.monotonic() + 5
            while "KG source" not in detail.inner_text():
                assert time.monotonic() < deadline, "hovering an edge showed no evidence"
                page.wait_for_timeout(100)

            # the screenshot: the most probable diagnosis with paths, its first step's evidence
            buttons.nth(with_paths[0]).click()
            assert buttons.nth(with_paths[0]).get_attribute("aria-pressed") == "true"
            page.locator("#path-list > li").first.locator("button.step").first.click()
            shot = tmp_path / f"viewer-{SHOWN}.png"
            page.screenshot(path=str(shot), full_page=True)

            # a narrow screen: one column, nothing wider than the screen
            narrow = browser.new_page(viewport={"width": 390, "height": 844})
            # a new tab: sessionStorage is per tab
            open_with_key(narrow, f"{base}/patients/{SHOWN}", key)
            width = narrow.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, f"the page is {width} px wide on a 390 px screen"
            narrow_shot = tmp_path / f"viewer-{SHOWN}-narrow.png"
            narrow.screenshot(path=str(narrow_shot), full_page=True)
        browser.close()

    csp = [m for m in console if "Content Security Policy" in m or m.startswith("pageerror")]
    assert not csp, csp
    keep_screenshots(shot, narrow_shot)
    print(f"screenshots: {shot} and {narrow_shot} (copies in {SCREENSHOTS})")


def test_start_page_lists_patients_and_a_bad_key_is_asked_again(served, tmp_path) -> None:
    base, key = served["base"], served["key"]
    with served["playwright"]() as playwright:
        browser = launch(playwright)
        page, console = desktop_page(browser)
        with explained(page, console, served, tmp_path):
            page.goto(base + "/")
            page.wait_for_selector("#key-panel:not([hidden])", timeout=20_000)
            page.fill("#key-input", "kgdx_not-a-key")
            page.press("#key-input", "Enter")
            page.wait_for_selector("#key-panel:not([hidden])")
            assert "not accepted" in page.locator("#message").inner_text()
            assert page.evaluate("sessionStorage.getItem('kgdx.apiKey')") is None
            page.fill("#key-input", key)
            page.press("#key-input", "Enter")
            page.wait_for_selector("#patient-list a")
            links = page.locator("#patient-list a")
            assert links.count() == len(api(served, "GET", "/v1/patients")["items"]) >= 80
            page.fill("#patient-filter", SHOWN)
            assert page.locator("#patient-list a").count() == 1
            page.press("#patient-filter", "Enter")  # the only match opens, by keyboard
            page.wait_for_url(f"**/patients/{SHOWN}")
            page.wait_for_selector("button.dx", timeout=60_000)  # same tab: the key is kept
            page.click("#forget-key")
            page.wait_for_url(base + "/")
            assert page.evaluate("sessionStorage.getItem('kgdx.apiKey')") is None
        browser.close()


def test_coded_findings_labs_and_an_image_with_its_thumbnail(served, tmp_path) -> None:
    """A patient posted as the ingest role (multipart: coded findings, a lab and, where the real
    chest X-rays are available, an image) shows them all to the clinician."""
    from tests.conftest import SHARED_DATA

    body = {
        "id": "VIEW-IMG",
        "reports": ["FINDINGS: Patchy consolidation in the right lower lobe."],
        "findings": [
            {"concept_id": "UMLS:C0015967", "assertion": "present", "label": "fever"},
            {"concept_id": "UMLS:C0032227", "assertion": "absent", "label": "pleural effusion"},
        ],
        "labs": [{"code": "LOINC:26464-8", "name": "Leukocytes", "value": 14.2,
                  "unit": "10*9/L", "interpretation": "high"}],
    }  # fmt: skip
    images = sorted((SHARED_DATA / "cohorts" / "covid_cxr" / "images").glob("*.png"))[:1]
    files = [("images", (p.name, p.read_bytes(), "image/png")) for p in images]
    stored = api(
        served, "POST", "/v1/patients", served["ingest_key"],
        data={"patient": json.dumps(body)}, files=files or None,
    )  # fmt: skip
    coded = [f for f in stored["findings"] if f["source"] == "coded"]
    assert {f["assertion"] for f in coded} == {"present", "absent"}

    with served["playwright"]() as playwright:
        browser = launch(playwright)
        page, console = desktop_page(browser)
        with explained(page, console, served, tmp_path):
            open_with_key(page, f"{served['base']}/patients/VIEW-IMG", served["key"])
            # the coded findings are marked like text ones, in their generated report
            for concept, status in (("UMLS:C0015967", "present"), ("UMLS:C0032227", "absent")):
                mark = page.locator(f'#reports mark.finding[data-concept="{concept}"]')
                assert mark.count() >= 1, concept
                assert mark.first.get_attribute("data-status") == status
            assert "Leukocytes" in page.locator("#labs").inner_text()
            if images:
                card = page.locator("#images figure.image-card")
                assert card.count() == 1
                img = card.locator(".thumb img")
                img.wait_for(timeout=10_000)
                assert img.evaluate("i => i.complete && i.naturalWidth > 0")
                assert img.get_attribute("src").startswith("blob:")  # fetched with the key
                meter = card.locator('[role="meter"]').first
                probability = float(meter.get_attribute("aria-valuenow"))
                image_findings = [f for f in stored["findings"] if f["source"] == "image"]
                assert probability == max(f["provenance"]["probability"] for f in image_findings)
            shot = tmp_path / "viewer-VIEW-IMG.png"
            page.screenshot(path=str(shot), full_page=True)
        browser.close()
    keep_screenshots(shot)
    print(f"screenshot: {shot}" + ("" if images else " (no image: ../shared/data is absent)"))
