"""What the viewer's browser tests share: Chromium (Debian's, driven by Playwright) or a skip, a
real uvicorn serving a store and model on a loopback port, the page's key entry, and failures
that carry the page's message, its console and the server's log."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.local_server import serve

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KGDX_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / ".kgdx" / "screenshots"


def browser_or_skip():
    """Playwright's ``sync_playwright``, or a skip naming what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's (`apt-get install -y chromium`, which "
            "`make test` does when run as root) or set KGDX_CHROMIUM; Playwright's own browser "
            "download is not used"
        )
    return sync_playwright


@contextlib.contextmanager
def serve_viewer(folder: Path, env: dict[str, str], entries: list) -> Iterator[dict]:
    """uvicorn serving the app with ``env`` (``KGDX_*`` settings) and the key ``entries``
    (:func:`api.auth.key_entry`) until the block ends; yields ``base`` (the URL) and ``log``
    (the server's output, in ``folder``)."""
    keys = json.dumps([entry.model_dump() for entry in entries])
    settings = {**env, "KGDX_API_KEYS": keys, "KGDX_EXTRACT_WARMUP": "false"}
    log = folder / "server.log"
    with serve(settings, keep_keys=True, log=log) as (port, _):
        yield {"base": f"http://127.0.0.1:{port}", "log": log}


@contextlib.contextmanager
def explained(page, console: list[str], served: dict, folder: Path) -> Iterator[None]:
    """On a failure, save a screenshot and add the page's message, its console and the server's
    log to the error."""
    try:
        yield
    except Exception as exc:
        shot = folder / "failure.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot), full_page=True)
        message = ""
        with contextlib.suppress(Exception):
            message = page.locator("#message").inner_text()
        raise AssertionError(
            f"{exc}\npage message: {message!r}\nconsole: {console}\nscreenshot: {shot}\n"
            f"server log:\n{served['log'].read_text()[-3000:]}"
        ) from exc


def api(served: dict, method: str, path: str, key: str | None = None, **kwargs):
    """One call to the served API with ``key`` (the served clinician key by default)."""
    import httpx

    headers = {"Authorization": f"Bearer {key or served['key']}"}
    response = httpx.request(method, served["base"] + path, headers=headers, timeout=60, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def launch(playwright):
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
    )


def desktop_page(browser):
    """A 1280x800 tab and the list its console messages and page errors are added to."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    return page, console


def open_with_key(page, url: str, key: str) -> None:
    """Open a viewer page, answer its key prompt (the data calls answer 401 without a key) and
    wait for the diagnoses."""
    page.goto(url)
    page.wait_for_selector("#key-panel:not([hidden])", timeout=20_000)
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    page.wait_for_selector("button.dx", timeout=60_000)


def keep_screenshots(*paths: Path) -> None:
    """Copy screenshots to ``.kgdx/screenshots/`` (ignored by git), where they are looked at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copy(path, SCREENSHOTS / path.name)
