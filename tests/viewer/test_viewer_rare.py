"""The clinician viewer on a rare-disease case: a real Phenopacket Store case, coded with its
observed and excluded HPO terms, ranked against every OMIM disease of the default KG by the model
``kgdx demo`` trains, in headless Chromium.

The rare part of the demo builds the default KG and trains its quick model on real cases (the
shown case is of the held-out part: never trained on); a real uvicorn serves that store and model
with a clinician and an ingest key. The case goes in through ``POST /v1/patients`` as coded
findings, the page explains a diagnosis with a path from an observed term and one from an
excluded term, and the screenshot is saved as ``viewer-rare-<case>.png`` (copied to
``.kgdx/screenshots/``). Skips without ``../shared/data`` or a browser.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from tests.viewer.browser import (
    api,
    browser_or_skip,
    desktop_page,
    explained,
    keep_screenshots,
    launch,
    open_with_key,
    serve_viewer,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CANDIDATES = 12  # held-out cases with excluded terms tried until one is explained by both kinds
VIEWER_RUN = "top_k=5&paths_per_diagnosis=3"  # what the page asks when nothing is stored


@pytest.fixture(scope="module")
def served(shared_data, tmp_path_factory) -> Iterator[dict]:
    sync_playwright = browser_or_skip()
    from rich.console import Console

    from api.auth import key_entry, new_key
    from api.commands.demo_rare import FOLDER, run_rare_demo
    from gnn.tasks import get_task

    home = tmp_path_factory.mktemp("viewer-rare")
    data = shared_data / "phenopackets"
    shown = run_rare_demo(Console(file=io.StringIO()), home=home, data=data, cases=1, every=20)
    if shown is None:
        pytest.skip("the rare part of the demo was skipped (no cases or no HPO here)")
    task = get_task("phenopackets")
    cases = task.read(data)
    by_id = {case.id: case for case in cases}
    held_out = [by_id[i] for i in task.split(cases, kind="patient", seed=0).test]
    folder = home / FOLDER
    key, ingest_key = new_key(), new_key()
    entries = [key_entry("clinician", "clinician", key), key_entry("loader", "ingest", ingest_key)]
    env = {
        "KGDX_HOME": str(folder),
        "KGDX_DB_PATH": str(folder / "kg.lbug"),
        "KGDX_MODEL_DIR": shown["run"],
    }
    with serve_viewer(folder, env, entries) as running:
        yield running | {
            "key": key,
            "ingest_key": ingest_key,
            "cases": [case for case in held_out if case.excluded and case.observed],
            "playwright": sync_playwright,
        }


def _first_step_of(diagnosis: dict, said: str, sign: int) -> int | None:
    """The index of the first path whose first step is an ``observed`` or ``excluded`` term
    and whose score has ``sign`` (an observed term may also count against a diagnosis)."""
    for index, path in enumerate(diagnosis["paths"]):
        first = path["evidence"][0] if path["evidence"] else ""
        if first.startswith(f"{said}:") and path["score"] * sign > 0:
            return index
    return None


def _case_explained_both_ways(served: dict) -> tuple[str, int, int, int]:
    """Ingest held-out cases (coded observed and excluded terms) and run the model on them as
    the page would, until a diagnosis has a path from an observed term and one from an excluded
    term, one supporting it and one counting against it: (patient id, diagnosis index,
    observed path, excluded path)."""
    import httpx

    tried = []
    for case in served["cases"][:CANDIDATES]:
        findings = [{"concept_id": t, "assertion": "present"} for t in case.observed]
        findings += [{"concept_id": t, "assertion": "absent"} for t in case.excluded]
        answer = httpx.post(
            served["base"] + "/v1/patients",
            json={"id": case.id, "findings": findings},
            headers={"Authorization": f"Bearer {served['ingest_key']}"},
            timeout=60,
        )
        if answer.status_code == 422:  # a term this KG does not know: refused, nothing stored
            assert "unknown concept id" in answer.text, answer.text
            tried.append(f"{case.id}: {answer.json()['detail'][:80]}")
            continue
        assert answer.status_code == 201, answer.text
        ranked = api(served, "POST", f"/v1/patients/{case.id}/diagnoses?{VIEWER_RUN}")
        for index, diagnosis in enumerate(ranked["diagnoses"]):
            observed = _first_step_of(diagnosis, "observed", +1)
            excluded = _first_step_of(diagnosis, "excluded", -1)
            if observed is not None and excluded is not None:
                return case.id, index, observed, excluded
        tried.append(f"{case.id}: no diagnosis explained by both kinds of term")
    raise AssertionError(f"no held-out case explained both ways: {tried}")


def test_a_rare_case_shows_observed_and_excluded_terms_on_its_paths(served, tmp_path) -> None:
    patient_id, chosen, observed, excluded = _case_explained_both_ways(served)
    stored = api(served, "GET", f"/v1/patients/{patient_id}/diagnoses")["diagnoses"]
    diagnosis = [d for d in stored if d["rank"] == chosen + 1][0]
    assert 0.0 < diagnosis["probability"] <= 1.0  # an OMIM disease (some merged into UMLS ids)
    excluded_path = diagnosis["paths"][excluded]

    with served["playwright"]() as playwright:
        browser = launch(playwright)
        page, console = desktop_page(browser)
        with explained(page, console, served, tmp_path):
            open_with_key(page, f"{served['base']}/patients/{patient_id}", served["key"])
            # the coded report: excluded terms struck through and tagged, observed ones not
            absent = page.locator('#reports mark.finding[data-status="absent"]')
            present = page.locator('#reports mark.finding[data-status="present"]')
            assert absent.count() >= 1 and present.count() >= 1
            decoration = "e => getComputedStyle(e).textDecorationLine"
            assert "line-through" in absent.first.evaluate(decoration)
            assert "line-through" not in present.first.evaluate(decoration)

            buttons = page.locator("button.dx")
            assert diagnosis["name"] in buttons.nth(chosen).locator(".dx-name").inner_text()
            buttons.nth(chosen).click()
            assert buttons.nth(chosen).get_attribute("aria-pressed") == "true"
            paths = page.locator("#path-list > li")
            assert paths.count() == len(diagnosis["paths"])
            detail = page.locator("#step-detail")

            paths.nth(observed).locator("button.step").first.click()
            seen = detail.inner_text()
            sent = re.match(r'observed: "(HP:\d{7}) ', diagnosis["paths"][observed]["evidence"][0])
            assert sent and f"observed term {sent.group(1)}" in seen
            assert "supports the diagnosis (occlusion +" in seen
            paths.nth(excluded).locator("button.step").first.click()
            seen = detail.inner_text()
            assert "counts against the diagnosis (occlusion -" in seen  # the model's part
            assert excluded_path["node_names"][1] in seen  # the excluded term, by name
            sent = re.match(r'excluded: "(HP:\d{7}) ', excluded_path["evidence"][0])
            assert sent, excluded_path["evidence"][0]  # the coded line starts with the code
            assert f"excluded term {sent.group(1)}" in seen  # as sent, merged into UMLS or not
            assert "counts against" in paths.nth(excluded).locator(".path-score").inner_text()
            chip = paths.nth(excluded).locator('.path-node[data-status="absent"]')
            assert chip.count() == 1 and "line-through" in chip.evaluate(decoration)
            paths.nth(excluded).locator("button.step").last.click()
            assert "KG source" in detail.inner_text() and "HPO:" in detail.inner_text()

            # the screenshot: the chosen diagnosis with its excluded term's evidence shown
            paths.nth(excluded).locator("button.step").first.click()
            shot = tmp_path / f"viewer-rare-{patient_id}.png"
            page.screenshot(path=str(shot), full_page=True)
        browser.close()
    keep_screenshots(shot)
    print(f"screenshot: {shot}: {diagnosis['name']} (rank {chosen + 1}) for {patient_id}")
