"""scispaCy's abbreviation detector as a kgdx component (``kgdx_abbreviations``).

Short forms it finds ("PTX" in "pneumothorax (PTX)") take their long form's concepts in the
concept matcher. This module has no ``from __future__ import annotations``: spaCy reads the
factory's annotations at runtime.
"""

from spacy.language import Language


def make_abbreviation_detector(nlp: Language, name: str):
    """scispaCy's ``AbbreviationDetector``, skipped on reports with no "(...)" to define one.

    Without a parenthesis there is no definition to find; skipping saves time and scispaCy's
    warning about its empty per-document matcher (W036).
    """
    import warnings

    from scispacy.abbreviation import AbbreviationDetector

    detector = AbbreviationDetector(nlp, name)

    def detect(doc):
        if "(" not in doc.text:
            return doc
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*\[W036\].*")
            return detector(doc)

    return detect


Language.factory("kgdx_abbreviations", func=make_abbreviation_detector)
