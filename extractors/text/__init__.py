"""Report text -> findings linked to KG concepts, with negation / uncertainty / history / family.

Usage::

    extractor = ReportExtractor.from_concepts(store.iter_concepts())
    findings = extractor.extract("FINDINGS: Small left pleural effusion. No pneumothorax.", "r1")

The names below are imported on first use, so a submodule (``extractors.text.light_imports``,
``extractors.text.vocabulary``) can be imported without loading spaCy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extractors.text.extractor import ReportExtractor, chunk_offsets, coerce_text
    from extractors.text.pipeline import PipelineConfig, build_pipeline
    from extractors.text.vocabulary import Vocabulary

_HOMES = {
    "ReportExtractor": "extractors.text.extractor",
    "chunk_offsets": "extractors.text.extractor",
    "coerce_text": "extractors.text.extractor",
    "PipelineConfig": "extractors.text.pipeline",
    "build_pipeline": "extractors.text.pipeline",
    "Vocabulary": "extractors.text.vocabulary",
}

__all__ = [
    "PipelineConfig",
    "ReportExtractor",
    "Vocabulary",
    "build_pipeline",
    "chunk_offsets",
    "coerce_text",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'extractors.text' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
