"""The viewer's page and files as served, without a browser (fast): what it loads is in the
package, shipped as package data, licensed, unchanged since vendoring and allowed by its CSP."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routers import viewer
from api.viewer import STATIC
from graph.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VENDOR = STATIC / "vendor"


@pytest.fixture()
def client(tmp_path):
    app = FastAPI()
    app.state.settings = Settings(home=tmp_path)  # open mode: the in-process client is local
    app.include_router(viewer.router)
    with TestClient(app) as test_client:
        yield test_client


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.styles: list[str] = []
        self.inline_styles = 0
        self.style_elements = 0

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "style" in found:
            self.inline_styles += 1
        if tag == "script":
            self.scripts.append(found.get("src"))
        if tag == "style":
            self.style_elements += 1
        if tag == "link" and found.get("rel") == "stylesheet":
            self.styles.append(found["href"])


def test_the_page_loads_only_served_files_and_no_inline_code(client) -> None:
    for path in ("/", "/patients/P014"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "default-src 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
    assets = _Assets()
    assets.feed(client.get("/").text)
    assert assets.scripts and None not in assets.scripts  # no inline script: CSP would block it
    assert assets.inline_styles == 0 and assets.style_elements == 0
    for url in assets.scripts + assets.styles:
        assert url.startswith(viewer.STATIC_PREFIX + "/")  # same origin, no CDN
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/viewer/static/vendor/cytoscape.min.js").headers["content-type"] == (
        "text/javascript; charset=utf-8"
    )
    assert "/vendor/cytoscape-dagre.min.js" in " ".join(assets.scripts)


def test_only_the_listed_files_are_served(client) -> None:
    for name in ("../viewer.py", "..%2F__init__.py", "index.html", "nope.js", "vendor/../x"):
        assert client.get(f"/viewer/static/{name}").status_code == 404
    assert client.get("/patients/not%20an%20id").status_code == 422


def test_vendored_builds_are_the_recorded_ones_with_their_licenses() -> None:
    sums = {}
    for line in (VENDOR / "SHA256SUMS.txt").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    assert set(sums) == {"cytoscape.min.js", "cytoscape-dagre.min.js"}
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for package in ("cytoscape", "cytoscape-dagre", "dagre", "graphlib"):
        text = (VENDOR / f"{package}.LICENSE.txt").read_text()
        assert "Permission is hereby granted, free of charge" in text, package  # MIT
    readme = (ROOT / "api" / "viewer" / "vendor-src" / "README.md").read_text()
    lock = (ROOT / "api" / "viewer" / "vendor-src" / "package-lock.json").read_text()
    for package, version in (("cytoscape", "3.35.0"), ("cytoscape-dagre", "4.0.1")):
        assert version in readme
        assert re.search(rf'"node_modules/{package}":\s*{{\s*"version": "{version}"', lock)


def test_the_csp_allows_the_one_style_cytoscape_injects() -> None:
    """cytoscape adds one <style> element; its text must be the one the CSP hash is made of (a
    cytoscape upgrade that changes it would break the page's layout silently)."""
    build = (VENDOR / "cytoscape.min.js").read_text()
    assert '"__________cytoscape_container"' in build
    assert '" { position: relative; }"' in build
    assert viewer.CYTOSCAPE_STYLE == ".__________cytoscape_container { position: relative; }"


def test_every_served_file_and_the_page_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api.viewer"]
    shipped = [*viewer.static_files(), viewer.PAGE]
    for name in shipped:
        relative = f"static/{name}"
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    assert (STATIC / viewer.PAGE).is_file()
