"""HPO annotations (NOT, frequency, evidence) and Disease Ontology TSV reports."""

from __future__ import annotations

import pytest

from graph.errors import InputError
from kg_loaders.doreports import DoReportsReader
from kg_loaders.hpoa import HpoaReader, frequency_weight


@pytest.fixture()
def hpoa(fixtures):
    return HpoaReader(fixtures / "obo" / "phenotype.hpoa")


def test_hpoa_diseases_and_negated_phenotypes(hpoa):
    assert hpoa.provenance == "HPO:2025-01-16"
    assert [c.id for c in hpoa.concepts()] == ["OMIM:115200", "ORPHA:217604"]
    relations = {(r.src, r.dst): r for r in hpoa.relations()}
    negated = relations[("OMIM:115200", "HP:0002202")]
    assert negated.negated and negated.type == "HAS_PHENOTYPE"
    assert not relations[("ORPHA:217604", "HP:0002202")].negated


def test_hpoa_rows_of_one_pair_merge_their_evidence(hpoa):
    relation = next(r for r in hpoa.relations() if (r.src, r.dst) == ("OMIM:115200", "HP:0001640"))
    assert relation.attributes["reference"] == "OMIM:115200;PMID:10739735"
    assert relation.attributes["evidence"] == "TAS;PCS"
    assert relation.weight == pytest.approx(0.895)  # the larger of "very frequent" and 3/4


def test_hpoa_aspects_and_unknown_aspect(hpoa):
    types = {(r.src, r.dst): r.type for r in hpoa.relations()}
    assert types[("OMIM:115200", "HP:0000006")] == "ASSOCIATED_WITH"  # inheritance
    assert types[("ORPHA:217604", "HP:0000006")] == "ASSOCIATED_WITH"  # unknown "X"
    assert hpoa.stats.unknown_relations == {"X": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3/4", 0.75), ("45%", 0.45), ("HP:0040285", 0.0), ("", None), ("often", None), ("1/0", None)],
)
def test_frequency_weight(value, expected):
    assert frequency_weight(value) == expected


def test_hpoa_bad_row(tmp_path):
    bad = tmp_path / "phenotype.hpoa"
    bad.write_text("#version: 2025-01-16\nOMIM:1\tX\t\tHP:0000001\n")
    with pytest.raises(InputError, match=r"phenotype\.hpoa:2: expected 12 fields"):
        list(HpoaReader(bad).relations())


def test_do_reports_classes_xrefs_symptoms_and_axioms(fixtures):
    reader = DoReportsReader(fixtures / "obo" / "do_reports", version="2025-01-31")
    concepts = {c.id: c for c in reader.concepts()}
    assert len(concepts) == 7  # pulmonary edema has two parent rows
    assert concepts["DOID:12930"].xrefs == ("UMLS:C0007193", "OMIM:115200", "ORPHA:217604")
    assert concepts["DOID:6000"].sources == ("DOID:2025-01-31",)
    relations = [(r.src, r.type, r.dst) for r in reader.relations()]
    assert ("DOID:12930", "IS_A", "DOID:114") in relations  # parent named by label
    assert ("DOID:6000", "HAS_SYMPTOM", "SYMP:0000613") in relations
    assert ("DOID:12930", "CAUSED_BY", "DOID:114") in relations  # 'has material basis in'
    assert ("DOID:12930", "ASSOCIATED_WITH", "DOID:6000") in relations  # unknown property
    assert reader.stats.unknown_relations == {"adjacent to": 1}
    # "respiratory failure" (parent) and "heart" (a location) are not DO/symptom labels here
    assert reader.stats.unresolved == 2


def test_do_reports_missing_classes_file_lists_expected(tmp_path):
    with pytest.raises(InputError, match="HumanDO.tsv"):
        DoReportsReader(tmp_path)


@pytest.mark.shared_data
def test_real_hpoa_and_do(shared_data):
    hpoa = HpoaReader(shared_data / "kg" / "hpo" / "phenotype.hpoa")
    relations = list(hpoa.relation_rows())
    assert len({(r[0], r[1]) for r in relations}) == 271_111
    assert sum(1 for r in relations if r[3]) == 711  # the NOT rows
    assert sum(1 for _ in hpoa.concepts()) == 12_687  # SOURCES.md disease count
    do = DoReportsReader(shared_data / "kg" / "do")
    concepts = {c.id: c for c in do.concepts()}
    assert concepts["DOID:1673"].name == "pneumothorax"
    assert "UMLS:C0029850" in concepts["DOID:1673"].xrefs
    symptoms = [r for r in do.relations() if r.type == "HAS_SYMPTOM"]
    assert len({(r.src, r.dst) for r in symptoms}) >= 2_222


def test_version_read_by_two_threads_at_once_is_never_a_placeholder(fixtures, monkeypatch):
    """The build thread and the prefetch thread both ask for the provenance; one of them used to
    see "unknown" while the other was still reading the header."""
    import threading
    import time

    import kg_loaders.hpoa as hpoa_module

    real_open = hpoa_module.open_text
    reading = threading.Event()

    class SlowHeader:  # the header arrives slowly, as from a cold disk
        def __init__(self, path):
            self.inner = real_open(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def __iter__(self):
            for line in self.inner:
                reading.set()
                time.sleep(0.02)
                yield line

    monkeypatch.setattr(hpoa_module, "open_text", SlowHeader)
    reader = HpoaReader(fixtures / "obo" / "phenotype.hpoa")
    seen: list[str] = []
    first = threading.Thread(target=lambda: seen.append(reader.version))
    first.start()
    reading.wait(5)
    seen.append(reader.version)  # while the first thread is still reading the header
    first.join()
    assert seen == ["2025-01-16", "2025-01-16"]
