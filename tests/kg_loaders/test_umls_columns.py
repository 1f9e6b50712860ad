"""The column-wise MRREL reader: the same relations as the RRF rules say, and bad input."""

from __future__ import annotations

import gzip
import shutil

import pyarrow.compute as pc
import pytest

from bench.gen_rrf import generate
from graph.errors import InputError
from kg_loaders.umls import UMLS_RELATIONS, UmlsReader


def _release(fixtures, tmp_path, mrrel: str, name: str = "MRREL.RRF"):
    for part in ("MRCONSO.RRF", "MRSTY.RRF"):
        shutil.copy(fixtures / "umls" / part, tmp_path / part)
    data = mrrel.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return tmp_path


def _expected(text: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """The MRREL rules, row by row (UMLS Reference Manual: "CUI2 is <REL/RELA> of CUI1")."""
    out = []
    for line in text.splitlines():
        f = line.split("|")
        if f[-1] == "":  # the trailing bar
            f.pop()
        if len(f) != 16 or f[14] not in ("N", "") or f[0] == f[4]:
            continue
        name = f[7] if f[7] in UMLS_RELATIONS else f[3]
        spec = UMLS_RELATIONS.get(name, ("ASSOCIATED_WITH", False))
        if spec is None:
            continue
        src, dst = (f[4], f[0]) if spec[1] else (f[0], f[4])
        out.append((f"UMLS:{src}", spec[0], f"UMLS:{dst}", {"sab": f[10]}))
    return out


def _got(reader: UmlsReader):
    return [(r.src, r.type, r.dst, r.attributes) for r in reader.relations()]


def test_fixture_relations_follow_the_rules(fixtures):
    text = (fixtures / "umls" / "MRREL.RRF").read_text()
    reader = UmlsReader(fixtures / "umls")
    assert _got(reader) == _expected(text)
    batches = list(reader.relation_batches())
    assert [sources for _, sources in batches] == [("UMLS:unknown",)]


def test_generated_release_matches_the_rules(tmp_path):
    generate(tmp_path, concepts=2_000, relations=20_000)
    reader = UmlsReader(tmp_path)
    got = _got(reader)
    assert got == _expected((tmp_path / "MRREL.RRF").read_text())
    assert len(got) > 15_000
    # has_occurrence is not in the table: counted, typed by its REL (RO -> ASSOCIATED_WITH)
    assert reader.stats.unknown_relations["has_occurrence"] > 0


def test_rows_arrow_refuses_are_read_or_reported(fixtures, tmp_path):
    good = (fixtures / "umls" / "MRREL.RRF").read_text().splitlines()
    no_bar = good[1][:-2] + "|256"  # a row without the trailing bar (CVF set) is still a row
    text = "\n".join([good[0], "   ", no_bar, *good[2:]]) + "\n"
    reader = UmlsReader(_release(fixtures, tmp_path, text))
    assert sorted(map(str, _got(reader))) == sorted(map(str, _expected(text)))

    bad = "\n".join([*good[:3], "C0000001|too|few|fields|", *good[3:]]) + "\n"
    (tmp_path / "MRREL.RRF").write_text(bad)
    with pytest.raises(InputError, match=r"MRREL\.RRF:4: expected 16 '\|' fields, found 4"):
        list(UmlsReader(tmp_path).relation_batches())
    lenient = UmlsReader(tmp_path, lenient=True)
    assert sorted(map(str, _got(lenient))) == sorted(map(str, _expected(bad)))
    assert lenient.stats.bad_lines == {(str(tmp_path / "MRREL.RRF"), 4)}


def test_gzipped_and_corrupt_mrrel(fixtures, tmp_path):
    text = (fixtures / "umls" / "MRREL.RRF").read_text()
    reader = UmlsReader(_release(fixtures, tmp_path, text, "MRREL.RRF.gz"))
    assert _got(reader) == _expected(text)
    (tmp_path / "MRREL.RRF.gz").write_bytes(gzip.compress(text.encode())[:-20])
    with pytest.raises(InputError, match="MRREL"):
        list(UmlsReader(tmp_path).relation_batches())
    (tmp_path / "MRREL.RRF.gz").unlink()
    (tmp_path / "MRREL.RRF").write_bytes(text.encode().replace(b"finding_site_of", b"\xff\xfe", 1))
    with pytest.raises(InputError, match="MRREL"):
        list(UmlsReader(tmp_path).relation_batches())


def test_batches_have_the_row_layout(fixtures):
    from kg_loaders.columns import ROW_SCHEMA

    for table, _ in UmlsReader(fixtures / "umls").relation_batches():
        assert table.schema == ROW_SCHEMA
        assert table["negated"].to_pylist() == [False] * table.num_rows
        assert pc.all(pc.equal(table["weight"], 1.0)).as_py()
