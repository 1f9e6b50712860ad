"""Normalise the many spellings of an identifier prefix to the CURIEs kgdx stores.

Sources spell the same namespace differently (``SNOMEDCT_US_2025_09_01:``, ``UMLS_CUI:``,
``MIM:``, ``ORDO:``); the crosswalk can only join ids that are written the same way.
"""

from __future__ import annotations

import re

# source prefix (upper case) -> kgdx prefix
PREFIX_ALIASES: dict[str, str] = {
    "UMLS": "UMLS",
    "UMLS_CUI": "UMLS",
    "SNOMEDCT": "SNOMEDCT",
    "SNOMEDCT_US": "SNOMEDCT",
    "SCTID": "SNOMEDCT",
    "SNOMED": "SNOMEDCT",
    "HP": "HP",
    "HPO": "HP",
    "DOID": "DOID",
    "SYMP": "SYMP",
    "MIM": "OMIM",
    "OMIM": "OMIM",
    "ORDO": "ORPHA",
    "ORPHA": "ORPHA",
    "ORPHANET": "ORPHA",
    "MSH": "MESH",
    "MESH": "MESH",
    "NCI": "NCIT",
    "NCIT": "NCIT",
}
_SNOMED_VERSIONED = re.compile(r"^SNOMEDCT_US_\d{4}_\d{2}_\d{2}$")
_SPACE = re.compile(r"\s")
# Source prefix as written -> kgdx prefix, filled as prefixes are met (a release uses a few
# dozen); the kgdx spellings are known from the start.
_PREFIXES: dict[str, str] = {v: v for v in set(PREFIX_ALIASES.values())}
_MAX_PREFIXES = 10_000

# Priority of sources when the crosswalk picks a merged node's name and kind (lower wins).
SOURCE_PRIORITY: dict[str, int] = {"UMLS": 0, "SNOMEDCT": 1, "HP": 2, "DOID": 3, "SYMP": 4}


def normalize_curie(value: str) -> str | None:
    """The kgdx CURIE for a source identifier, or ``None`` when it is not a ``PREFIX:id``.

    >>> normalize_curie("SNOMEDCT_US_2025_09_01:8186001")
    'SNOMEDCT:8186001'
    >>> normalize_curie("UMLS_CUI:C0018800")
    'UMLS:C0018800'
    """
    prefix, sep, local = value.partition(":")
    mapped = _PREFIXES.get(prefix)
    # The common case: a prefix seen before and no whitespace or quotes anywhere (isprintable()
    # is False for every whitespace character but the ASCII space, which is checked apart).
    if (
        mapped is not None
        and local
        and " " not in value
        and '"' not in value
        and value.isprintable()
    ):
        return value if mapped == prefix else f"{mapped}:{local}"
    value = value.strip().strip('"')
    prefix, sep, local = value.partition(":")
    local = local.strip()
    if not sep or not prefix or not local or _SPACE.search(local):
        return None
    key = prefix.strip().upper()
    if _SNOMED_VERSIONED.match(key):
        key = "SNOMEDCT"
    mapped = PREFIX_ALIASES.get(key, prefix.strip())
    if prefix == prefix.strip() and len(_PREFIXES) < _MAX_PREFIXES:
        _PREFIXES[prefix] = mapped
    return f"{mapped}:{local}"


def prefix_of(curie: str) -> str:
    """The prefix of a CURIE (``UMLS`` for ``UMLS:C0018800``)."""
    return curie.partition(":")[0]


def is_cui(curie: str) -> bool:
    """True for a UMLS concept id written as ``UMLS:C0000000``."""
    return (
        len(curie) == 13 and curie.startswith("UMLS:C") and curie[6:].isdigit() and curie.isascii()
    )
