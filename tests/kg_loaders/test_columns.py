"""The column-wise build pipeline: relation batches, the crosswalk rewrite, the spool, the
background bulk writer, and the column-wise ``phenotype.hpoa`` reader against the line reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from graph.errors import InputError, StoreError
from graph.records import Concept
from kg_loaders.build import build_kg
from kg_loaders.bulk import BulkWriter
from kg_loaders.columns import rows_table, table_rows
from kg_loaders.crosswalk import Crosswalk
from kg_loaders.hpoa import HpoaReader
from kg_loaders.spool import TableSpool

HEADER = (
    "#version: 2025-01-16\ndatabase_id\tdisease_name\tqualifier\thpo_id\treference\tevidence"
    "\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration\n"
)


def _hpoa(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "phenotype.hpoa"
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def _row(
    disease="OMIM:1", term="HP:0000001", qualifier="", reference="PMID:1", freq="", aspect="P"
):
    fields = [
        disease,
        "a disease",
        qualifier,
        term,
        reference,
        "PCS",
        "",
        freq,
        "",
        "",
        aspect,
        "x",
    ]
    return "\t".join(fields)


def test_rows_and_batches_round_trip():
    rows = [
        ("HP:1", "HP:2", "IS_A", False, 1.0, None),
        ("OMIM:1", "HP:2", "HAS_PHENOTYPE", True, 0.5, {"evidence": "TAS"}),
    ]
    assert list(table_rows(rows_table(rows))) == rows


def test_rewrite_drops_dangling_loops_and_repeats_across_batches():
    crosswalk = Crosswalk()
    records = [
        Concept(id="HP:1", name="a", xrefs=("UMLS:C0000001",)),
        Concept(id="DOID:1", name="a too", xrefs=("UMLS:C0000001",)),
        Concept(id="HP:2", name="b"),
    ]
    crosswalk.index([records])
    first = rows_table(
        [
            ("HP:1", "HP:2", "IS_A", False, 1.0, None),
            ("HP:1", "HP:2", "IS_A", False, 0.2, None),  # repeat in the batch: the first wins
            ("HP:1", "DOID:1", "IS_A", False, 1.0, None),  # one node after the merge
            ("HP:1", "HP:404", "IS_A", False, 1.0, None),  # no such concept
        ]
    )
    second = rows_table(
        [
            ("DOID:1", "HP:2", "IS_A", False, 1.0, None),  # the same edge once merged
            ("HP:2", "HP:1", "HAS_FINDING", False, 1.0, {"k": "v"}),
        ]
    )
    out = list(crosswalk.relation_tables([(first, ("A:1",)), (second, ("B:1",))]))
    assert [(t, table.num_rows) for t, table in out] == [("IS_A", 1), ("HAS_FINDING", 1)]
    is_a, finding = out[0][1], out[1][1]
    assert is_a.to_pylist()[0] | {} == {
        "from": "UMLS:C0000001",
        "to": "HP:2",
        "sources": '["A:1"]',  # JSON text (graph.schema.encode_sources)
        "weight": 1.0,
        "negated": False,
        "attributes": "",
    }
    assert finding["to"].to_pylist() == ["UMLS:C0000001"] and finding["polarity"].null_count == 1
    report = crosswalk.report
    assert (report.relations_in, report.relations_out) == (6, 2)
    assert (report.duplicates, report.self_loops, report.dangling) == (2, 1, 1)
    with pytest.raises(ValueError, match="unknown relation type 'LIKES'"):
        list(
            crosswalk.relation_tables(
                [(rows_table([("HP:1", "HP:2", "LIKES", False, 1.0, None)]), ())]
            )
        )


def test_spool_spills_to_parquet_past_its_budget(tmp_path):
    spool = TableSpool(tmp_path, budget_mb=0)
    table = pa.table({"x": pa.array(range(1000))})
    spool.add("A", table)
    spool.add("A", table)
    spool.add("B", table.slice(0, 10))
    items = dict(spool.items())
    assert isinstance(items["A"], Path) and items["A"].suffix == ".parquet"
    import pyarrow.parquet as pq

    assert pq.read_table(items["A"]).num_rows == 2000
    b = items["B"]
    assert (pq.read_table(b) if isinstance(b, Path) else b).num_rows == 10
    roomy = TableSpool(tmp_path / "roomy", budget_mb=64)
    roomy.add("A", table)
    ((key, data),) = list(roomy.items())
    assert key == "A" and isinstance(data, pa.Table) and not (tmp_path / "roomy").exists()


def test_bulk_writer_hands_its_error_to_the_build_thread(store):
    writer = BulkWriter(store)
    writer.submit("IS_A", pa.table({"from": ["HP:1"]}))  # not the bulk layout
    with pytest.raises(InputError, match="bulk layout"):
        writer.finish()
    writer.close()


def test_build_through_parquet_files_equals_the_in_memory_build(same_build):
    same_build(memory_mb=0)


def test_a_failing_bulk_load_keeps_the_previous_graph(settings, fixtures, monkeypatch):
    sources = [f"hpo={fixtures / 'obo' / 'mini-hp.obo'}"]
    first = build_kg(sources=sources, settings=settings)
    from graph.stores.embedded import EmbeddedStore

    def broken(self, rel_type, table):
        raise StoreError("disk full")

    monkeypatch.setattr(EmbeddedStore, "_copy_relations", broken)
    with pytest.raises(StoreError, match="disk full"):
        build_kg(sources=sources, settings=settings)
    monkeypatch.undo()
    from graph.stores import open_store

    with open_store("embedded", settings=settings) as store:
        assert store.counts().total_relations == first.relations


# ---------------------------------------------------------------- phenotype.hpoa, column-wise
def test_hpoa_columns_merge_repeats_and_escape_attributes(tmp_path):
    path = _hpoa(
        tmp_path,
        _row(reference='PMID:1 "quoted" \\ slash', freq="1/4"),
        _row(term="HP:0000002", freq="HP:0040285"),
        _row(reference="PMID:2", freq="3/4"),  # same pair: merged into the first row
        _row(qualifier="NOT", term="HP:0000003", freq="12.5%"),
        _row(disease="ORPHA:7", freq="2/0", aspect="I"),
    )
    reader = HpoaReader(path)
    rows = list(reader.relation_rows())
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("OMIM:1", "HP:0000001", "HAS_PHENOTYPE", False),
        ("OMIM:1", "HP:0000002", "HAS_PHENOTYPE", False),
        ("OMIM:1", "HP:0000003", "HAS_PHENOTYPE", True),
        ("ORPHA:7", "HP:0000001", "ASSOCIATED_WITH", False),
    ]
    merged = rows[0]
    assert merged[4] == 0.75  # the larger of 1/4 and 3/4
    assert merged[5]["reference"] == 'PMID:1 "quoted" \\ slash;PMID:2'
    assert merged[5]["frequency"] == "1/4;3/4"
    assert [r[4] for r in rows[1:]] == [0.0, 0.125, 1.0]  # 2/0 is no frequency: weight 1
    batch, _ = next(reader.relation_batches())
    assert all(json.loads(text) for text in batch["attributes"].to_pylist())


def test_hpoa_lenient_skips_a_bad_row_and_keeps_the_rest(tmp_path):
    path = _hpoa(
        tmp_path,
        _row(),
        "OMIM:2\tbroken row",
        _row(disease="OMIM:3", qualifier="MAYBE"),
        _row(disease="OMIM:4"),
    )
    with pytest.raises(InputError, match=r"phenotype\.hpoa:4: expected 12 fields"):
        list(HpoaReader(path).relation_rows())
    lenient = HpoaReader(path, lenient=True)
    assert [r[0] for r in lenient.relation_rows()] == ["OMIM:1", "OMIM:4"]
    assert lenient.stats.skipped_lines == 2
    assert [c.id for c in lenient.concepts()] == ["OMIM:1", "OMIM:4"]


def test_hpoa_gzip_and_corrupt_gzip(tmp_path):
    import gzip

    plain = _hpoa(tmp_path, _row())
    packed = tmp_path / "phenotype.hpoa.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert [r[1] for r in HpoaReader(packed).relation_rows()] == ["HP:0000001"]
    broken = tmp_path / "broken.hpoa.gz"
    broken.write_bytes(gzip.compress(plain.read_bytes())[:-12])
    with pytest.raises(InputError, match="truncated or corrupt"):
        list(HpoaReader(broken).relation_rows())


def test_obo_terms_parsed_once_or_streamed_give_the_same_records(fixtures, tmp_path, monkeypatch):
    from kg_loaders import obo

    source = tmp_path / "hp.obo"
    shutil.copy(fixtures / "obo" / "mini-hp.obo", source)
    cached = obo.OboReader(source, name="HPO")
    expected = (list(cached.concepts()), list(cached.relation_rows()))
    source.write_text("")  # parsed once: the reader no longer needs the file
    assert (list(cached.concepts()), list(cached.relation_rows())) == expected
    shutil.copy(fixtures / "obo" / "mini-hp.obo", source)
    monkeypatch.setattr(obo, "CACHE_BYTES", 0)
    streamed = obo.OboReader(source, name="HPO")
    assert (list(streamed.concepts()), list(streamed.relation_rows())) == expected
    assert streamed._terms is None


def test_relation_batches_are_joined_per_reader_up_to_the_rewrite_size(fixtures, monkeypatch):
    import kg_loaders.load as load
    import kg_loaders.umls_columns as umls_columns
    from kg_loaders.ahead import ReadAhead
    from kg_loaders.umls import UmlsReader

    monkeypatch.setattr(umls_columns, "BLOCK_BYTES", 300)  # a few rows per Arrow batch
    reader = UmlsReader(fixtures / "umls")
    assert len(list(reader.relation_batches())) > 2
    ahead = ReadAhead([reader], fork=False)
    try:
        ((table, sources, whole),) = list(load._coalesced(ahead, [reader]))
        assert whole and sources == (reader.provenance,) and table.num_rows == 11
        monkeypatch.setattr(load, "REWRITE_ROWS", 4)
        parts = list(load._coalesced(ahead, [reader]))
    finally:
        ahead.close()
    assert len(parts) > 1 and not any(whole for _, _, whole in parts)
    assert sum(t.num_rows for t, _, _ in parts) == 11
