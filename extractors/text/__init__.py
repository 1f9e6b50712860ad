"""Report text -> findings linked to KG concepts, with negation / uncertainty / history / family.

Usage::

    extractor = ReportExtractor.from_concepts(store.iter_concepts())
    findings = extractor.extract("FINDINGS: Small left pleural effusion. No pneumothorax.", "r1")
"""

from __future__ import annotations

from extractors.text.extractor import ReportExtractor, chunk_offsets, coerce_text
from extractors.text.pipeline import PipelineConfig, build_pipeline
from extractors.text.vocabulary import Vocabulary

__all__ = [
    "PipelineConfig",
    "ReportExtractor",
    "Vocabulary",
    "build_pipeline",
    "chunk_offsets",
    "coerce_text",
]
