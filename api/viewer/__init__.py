"""The clinician viewer's static files: the page, its script and style, and the vendored
cytoscape builds (``static/vendor``, rebuilt by ``vendor-src/rebuild.sh``). Served by
:mod:`api.routers.viewer`; see docs/viewer.md."""

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
