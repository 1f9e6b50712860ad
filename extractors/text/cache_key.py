"""The key of a report extractor cache entry: a hash of everything the entry is derived from.

- the KG's content hash (:mod:`graph.kg_hash`: every concept's id, name, kind, synonyms, xrefs and
  sources; the seed KG and the lexicon-only vocabulary are hashed the same way);
- the extra synonyms (the label map's radiology lexicon), the kinds kept or left out and the
  :class:`~extractors.text.pipeline.PipelineConfig`;
- every file of the ``extractors/text`` package and of ``data/nlp`` (code, the assertion and
  section rule file, data files), the contents of a rule file named by
  ``PipelineConfig.assertion_rules``, ``VOCABULARY_VERSION``, and the versions of kgdx, spaCy,
  scispaCy, scikit-learn and NumPy.

The assertion rules are applied when a pipeline is assembled, never cached, so a rule change
could not be hidden by a stale entry anyway; hashing the whole package is the simple rule that
also covers code the cached parts come from (vocabulary, matcher, linker).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from extractors.text.pipeline import PipelineConfig
from graph.records import ConceptKind

CACHE_FORMAT = "2"  # bump when the entry layout changes
PACKAGE_DIR = Path(__file__).resolve().parent
# Folders whose files are part of every key: the text package and its rule/data files.
HASHED_DIRS = (PACKAGE_DIR, PACKAGE_DIR.parents[1] / "data" / "nlp")
VERSIONED = ("kgdx", "spacy", "scispacy", "scikit-learn", "numpy")
DEFAULT_EXCLUDE = (ConceptKind.ANATOMY,)


@dataclass(frozen=True)
class CacheKey:
    """A cache key and what went into it (written into the entry, for a reader to check)."""

    digest: str
    parts: dict[str, str]


@lru_cache(maxsize=4)
def code_fingerprint(directories: tuple[Path, ...] = HASHED_DIRS) -> str:
    """SHA-256 of every file under ``directories`` and of the library versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if not path.is_file() or any(
                p.startswith((".", "__pycache__")) for p in relative.parts
            ):
                continue
            digest.update(f"{directory.name}/{relative}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for name in VERSIONED:
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=?;".encode())
    return digest.hexdigest()


def cache_key(
    *,
    kg_hash: str,
    extra_synonyms: Mapping[str, Iterable[str]] | None = None,
    kinds: Iterable[ConceptKind | str] | None = None,
    exclude_kinds: Iterable[ConceptKind | str] = DEFAULT_EXCLUDE,
    config: PipelineConfig | None = None,
) -> CacheKey:
    """The key of the extractor built from a KG (``kg_hash``) with these options."""
    from extractors.text import vocabulary

    config = config or PipelineConfig()
    extra = [[cid, list(forms)] for cid, forms in (extra_synonyms or {}).items()]
    parts = {
        "format": CACHE_FORMAT,
        "kg": kg_hash,
        "extra_synonyms": _sha(json.dumps(extra, ensure_ascii=False)),
        "kinds": json.dumps(None if kinds is None else sorted(ConceptKind(k).value for k in kinds)),
        "exclude_kinds": json.dumps(sorted(ConceptKind(k).value for k in exclude_kinds)),
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "rule_file": _file_sha(getattr(config, "assertion_rules", None)),
        "vocabulary_version": str(getattr(vocabulary, "VOCABULARY_VERSION", "")),
        "code": code_fingerprint(),
    }
    return CacheKey(digest=_sha(json.dumps(parts, sort_keys=True))[:40], parts=parts)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha(path: str | Path | None) -> str:
    """SHA-256 of a file's bytes ("" for none, "missing" for a path that is not a file)."""
    if path is None:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"
