"""Reading sources ahead: a source parsed in a forked child gives the same records, errors and
statistics as one read in-process, and a build is the same with or without the child."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

import kg_loaders.ahead as ahead_module
from graph.errors import InputError
from kg_loaders.ahead import ReadAhead
from kg_loaders.obo import OboReader

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SMALL = """format-version: 1.2
data-version: symp/releases/2024-01-01

[Term]
id: SYMP:0000001
name: symptom
"""


@pytest.fixture()
def small(tmp_path):
    path = tmp_path / "small.obo"
    path.write_text(SMALL)
    return path


def _records(reader_or_ahead, reader):
    source = reader_or_ahead
    concepts = list(source.concepts(reader) if source is not reader else reader.concepts())
    batches = source.relation_batches(reader) if source is not reader else reader.relation_batches()
    tables = [table for table, _ in batches]
    return concepts, pa.concat_tables(tables) if tables else None


def test_the_largest_file_is_read_in_a_child_with_the_same_records(fixtures, small):
    big = OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")
    ahead = ReadAhead([OboReader(small, name="SYMP"), big])
    try:
        assert ahead.forked(big)
        concepts, relations = _records(ahead, big)
    finally:
        ahead.close()
    fresh = OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")
    want_concepts, want_relations = _records(fresh, fresh)
    fields = [(c.id, c.name, c.kind, c.synonyms, c.xrefs, c.sources) for c in want_concepts]
    assert [tuple(c) for c in concepts] == fields and len(concepts) > 5
    assert relations.equals(want_relations)
    assert big.stats.skipped_ids == fresh.stats.skipped_ids  # statistics come back too


def test_a_child_error_names_the_file_and_line(fixtures, small, tmp_path):
    text = (fixtures / "obo" / "mini-hp.obo").read_text()
    bad = tmp_path / "bad.obo"
    bad.write_text(text.replace("name: All\n", "name: All\nthis line has no tag\n"))
    reader = OboReader(bad, name="HPO")
    ahead = ReadAhead([OboReader(small, name="SYMP"), reader])
    try:
        assert ahead.forked(reader)
        with pytest.raises(InputError, match=r"bad\.obo:\d+: expected 'tag: value'"):
            list(ahead.concepts(reader))
    finally:
        ahead.close()
    lenient = OboReader(bad, name="HPO", lenient=True)
    ahead = ReadAhead([OboReader(small, name="SYMP"), lenient])
    try:
        assert len(list(ahead.concepts(lenient))) > 5
    finally:
        ahead.close()
    assert len(lenient.stats.bad_lines) == 1


def test_close_stops_a_child_that_was_never_read(fixtures, small):
    big = OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")
    ahead = ReadAhead([OboReader(small, name="SYMP"), big])
    pid = ahead._forked[id(big)].pid
    ahead.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind


def test_one_source_or_no_fork_reads_in_process(fixtures, small):
    big = OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")
    for ahead in (ReadAhead([big]), ReadAhead([OboReader(small), big], fork=False)):
        assert not ahead.forked(big)
        ahead.close()


def test_a_build_is_the_same_with_and_without_the_child(same_build, monkeypatch):
    forked, plain = same_build(lambda: monkeypatch.setattr(ahead_module, "FORK_MAX_BYTES", 0))
    assert forked.source_stats == plain.source_stats


def test_a_failed_fork_reads_in_process(fixtures, small, monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    big = OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")
    ahead = ReadAhead([OboReader(small, name="SYMP"), big])
    try:
        assert not ahead.forked(big)
        assert len(list(ahead.concepts(big))) > 5
    finally:
        ahead.close()
