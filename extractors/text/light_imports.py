"""Import the NLP stack without the parts report extraction never runs (torch, NLTK).

A cached ``kgdx extract report`` spends most of its start importing libraries, and two imports
are pure overhead there (measured with ``python -X importtime``):

- thinc (under spaCy) imports torch when it is installed: 1.2 s, for its PyTorch shims, which
  only transformer pipelines use; kgdx's pipeline (and an ``en_core_sci_*`` model) runs on
  thinc's NumPy ops. :func:`light_nlp_imports` imports ``thinc.compat`` with ``import torch``
  failing, so thinc records "no torch" in this process; torch itself stays importable and
  works for any other code.
- medspaCy imports QuickUMLS, which imports NLTK (and scipy.stats): 1.5 s, used only when a
  QuickUMLS matcher is built. NLTK is replaced by a module that imports the real NLTK on first
  use, so a caller that does use it gets it.

The CLI calls it before a report command, and the REST service at startup, before it starts
making the extractor in the background (and before any request runs: while ``thinc.compat`` is
imported, ``import torch`` fails in every thread). torch, imported later for a diagnosis, works
as usual; only thinc's PyTorch wrappers (spaCy transformer models) are off in that process.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

DEFERRED = ("nltk",)


class _DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it."""

    def __getattr__(self, name: str) -> object:
        real = _import_real(self.__name__)
        return getattr(real, name)


def _import_real(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    if isinstance(module, _DeferredModule):
        del sys.modules[name]
        module = importlib.import_module(name)
    return module  # type: ignore[return-value]


def defer_import(name: str) -> None:
    """Make ``import name`` cheap until the module is used (no-op when it is imported or
    not installed)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = _DeferredModule(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in


def thinc_without_torch() -> None:
    """Import ``thinc.compat`` as if torch were not installed (no-op when either is already
    imported)."""
    if "thinc.compat" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # "import torch" raises ImportError
    try:
        importlib.import_module("thinc.compat")
    finally:
        if sys.modules.get("torch", ...) is None:
            del sys.modules["torch"]


def light_nlp_imports() -> None:
    """Import the text pipeline's libraries without torch and with NLTK deferred."""
    thinc_without_torch()
    for name in DEFERRED:
        defer_import(name)
