"""The report extractor's on-disk cache: misses build and save, hits read back without building,
the key follows the KG, options, code and rule files, damaged entries are rebuilt, and writers
racing on one entry (threads and processes) leave one good entry."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from extractors.text.cache import (
    HASHED_DIRS,
    PACKAGE_DIR,
    ExtractorCache,
    cache_key,
    code_fingerprint,
    extractor_for_concepts,
    load_extractor,
)
from extractors.text.pipeline import PipelineConfig
from graph.kg_hash import concepts_hash
from graph.records import Concept, ConceptKind
from graph.settings import Settings
from kg_loaders.seed import read_seed_concepts

ROOT = Path(__file__).resolve().parents[3]
SEED = read_seed_concepts()
REPORT = (
    "FINDINGS: Small right pleural effusion. No pneumothorax. Mild cardiomegally.\n"
    "IMPRESSION: Possible pneumonia in the left lower lobe."
)


@pytest.fixture()
def kgdx_log(caplog):
    """Records of the ``kgdx`` logger (it does not propagate once the CLI set logging up)."""
    logger = logging.getLogger("kgdx")
    logger.addHandler(caplog.handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


def load(cache, built: list, concepts=SEED, **options):
    """``load_extractor`` over ``concepts``, noting in ``built`` each time it had to build."""

    def source():
        built.append(len(concepts))
        return concepts

    return load_extractor(kg_hash=concepts_hash(concepts), concepts=source, cache=cache, **options)


def findings(extractor) -> list[tuple]:
    return [
        (f.concept_id, f.provenance.start, f.provenance.end, f.assertion, f.confidence)
        for f in extractor.extract(REPORT, "r1")
    ]


def entries(cache: ExtractorCache) -> list[Path]:
    return sorted(cache.directory.glob("*.npz"))


def test_a_miss_builds_and_saves_and_a_hit_reads_it_back_without_building(tmp_path) -> None:
    cache = ExtractorCache(tmp_path / "cache")
    built: list = []
    first = load(cache, built)
    assert built == [len(SEED)] and len(entries(cache)) == 1
    second = load(cache, built)
    assert built == [len(SEED)]  # the concepts were not even read
    assert second.vocabulary == first.vocabulary
    assert findings(second) == findings(first)
    assert {f[0] for f in findings(second)} >= {"UMLS:C0032227", "UMLS:C0032326"}
    assert not list(cache.directory.glob(".*.tmp"))


def test_a_cached_extractor_finds_what_an_uncached_one_finds(tmp_path) -> None:
    from extractors.text import ReportExtractor

    cache = ExtractorCache(tmp_path / "cache")
    load(cache, [])
    cached = load(cache, [])
    fresh = ReportExtractor.from_concepts(SEED)
    matcher = cached.nlp.get_pipe("kgdx_concept_matcher")
    assert (
        matcher.concepts_by_pattern
        == fresh.nlp.get_pipe("kgdx_concept_matcher").concepts_by_pattern
    )
    assert findings(cached) == findings(fresh)
    assert any(f[4] < 1.0 for f in findings(cached))  # "cardiomegally": the fuzzy linker, cached


def test_the_key_follows_the_kg_and_the_options() -> None:
    base = cache_key(kg_hash=concepts_hash(SEED)).digest
    assert cache_key(kg_hash=concepts_hash(list(reversed(SEED)))).digest == base
    edited = [SEED[0].model_copy(update={"synonyms": (*SEED[0].synonyms, "wet lung")}), *SEED[1:]]
    released = [SEED[0].model_copy(update={"sources": ("SEED:2099-01-01",)}), *SEED[1:]]
    others = {
        "a synonym": cache_key(kg_hash=concepts_hash(edited)),
        "a source release": cache_key(kg_hash=concepts_hash(released)),
        "a concept fewer": cache_key(kg_hash=concepts_hash(SEED[1:])),
        "extra synonyms": cache_key(kg_hash=concepts_hash(SEED), extra_synonyms={"X:1": ["a b"]}),
        "kinds": cache_key(kg_hash=concepts_hash(SEED), kinds=[ConceptKind.DISEASE]),
        "excluded kinds": cache_key(kg_hash=concepts_hash(SEED), exclude_kinds=()),
        "no linker": cache_key(kg_hash=concepts_hash(SEED), config=PipelineConfig(linker=False)),
    }
    digests = {what: key.digest for what, key in others.items()}
    assert base not in digests.values() and len(set(digests.values())) == len(digests)


def test_the_code_hash_covers_the_package_and_the_rule_files(tmp_path) -> None:
    def fingerprint() -> str:
        code_fingerprint.cache_clear()  # a process computes it once; files change here
        return code_fingerprint(copies)

    copies = tuple(tmp_path / d.name for d in HASHED_DIRS)
    for source, copy in zip(HASHED_DIRS, copies, strict=True):
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert fingerprint() == code_fingerprint(HASHED_DIRS)  # the copies hash as the originals
    assert PACKAGE_DIR in HASHED_DIRS and (ROOT / "data" / "nlp") in HASHED_DIRS
    before = fingerprint()
    (copies[0] / "__pycache__").mkdir(exist_ok=True)
    (copies[0] / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert fingerprint() == before  # compiled files are not code changes
    rule_files = sorted(p for p in copies[1].rglob("*") if p.is_file())
    rule_files = rule_files or sorted(copies[0].glob("rules*.py"))
    rule_files[0].write_text(rule_files[0].read_text() + "\n# a new rule\n")
    changed = fingerprint()
    assert changed != before
    (copies[0] / "matcher.py").write_text((copies[0] / "matcher.py").read_text() + "\n")
    assert fingerprint() not in (before, changed)


def test_a_rule_file_given_in_the_config_is_part_of_the_key(tmp_path) -> None:
    rules = tmp_path / "rules.tsv"
    rules.write_text("a\tb\n")
    config = PipelineConfig(assertion_rules=str(rules))
    before = cache_key(kg_hash="k", config=config).digest
    rules.write_text("a\tb\nc\td\n")
    assert cache_key(kg_hash="k", config=config).digest != before


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "missing array", "other key"])
def test_an_unreadable_entry_is_rebuilt_with_a_warning(tmp_path, kgdx_log, damage) -> None:
    cache = ExtractorCache(tmp_path / "cache")
    built: list = []
    good = findings(load(cache, built))
    (path,) = entries(cache)
    if damage == "garbage":
        path.write_bytes(b"this is not a zip file")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "missing array":
        with np.load(path) as entry:
            arrays = {name: entry[name] for name in entry.files if name != "patterns.lengths"}
        np.savez(path, **arrays)
    else:  # the entry of another KG under this key's name
        other = ExtractorCache(tmp_path / "other")
        load(other, [], concepts=SEED[:20])
        shutil.copyfile(entries(other)[0], path)
    kgdx_log.clear()
    again = load(cache, built)
    assert built == [len(SEED), len(SEED)]  # rebuilt, not crashed
    assert findings(again) == good
    assert any(
        "unreadable" in r.getMessage() and r.levelname == "WARNING" for r in kgdx_log.records
    )
    assert load(cache, built) is not None and len(built) == 2  # the rebuilt entry reads back


def test_writers_and_readers_racing_on_one_entry_never_see_half_a_file(tmp_path) -> None:
    cache = ExtractorCache(tmp_path / "cache")
    first = load(cache, [])
    key = cache_key(kg_hash=concepts_hash(SEED))
    found = cache.load(key)
    assert found is not None
    vocabulary, state = found
    seen: list = []
    errors: list = []

    def write() -> None:
        for _ in range(5):
            if cache.save(key, vocabulary, state) is None:
                errors.append("save failed")

    def read() -> None:
        for _ in range(30):
            entry = cache.load(key)
            seen.append(entry is not None and entry[0] == vocabulary)

    threads = [threading.Thread(target=write) for _ in range(4)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and all(seen) and len(seen) == 30
    assert len(entries(cache)) == 1 and not list(cache.directory.glob(".*.tmp"))
    assert findings(load(cache, [])) == findings(first)


CONCURRENT_SCRIPT = """
import json, sys
from extractors.text.cache import ExtractorCache, load_extractor
from graph.kg_hash import concepts_hash
from kg_loaders.seed import read_seed_concepts
seed = read_seed_concepts()
built = []
def source():
    built.append(1)
    return seed
extractor = load_extractor(kg_hash=concepts_hash(seed), concepts=source, cache=ExtractorCache(sys.argv[1]))
print(json.dumps({"built": len(built), "terms": len(extractor.vocabulary)}))
"""


@pytest.mark.slow
def test_processes_missing_together_build_once_and_share_the_entry(tmp_path) -> None:
    folder = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(folder)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["built"] for r in results) == 1  # the others waited on the lock, then read it
    assert len({r["terms"] for r in results}) == 1
    assert len(list(folder.glob("*.npz"))) == 1 and not list(folder.glob(".*.tmp"))


def test_with_the_cache_off_nothing_is_written(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", extract_cache=False)
    extractor = extractor_for_concepts(SEED, settings=settings)
    assert findings(extractor)
    assert not (tmp_path / "home").exists()


def test_an_unwritable_cache_folder_warns_and_still_extracts(tmp_path, kgdx_log) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    settings = Settings(home=tmp_path / "home", extract_cache_dir=blocked)
    extractor = extractor_for_concepts(SEED, settings=settings)
    assert findings(extractor)
    assert any(r.levelname == "WARNING" for r in kgdx_log.records)


def test_old_entries_are_pruned(tmp_path) -> None:
    cache = ExtractorCache(tmp_path / "cache", keep=2)
    kgs = [[Concept(id=f"X:{n}", name=f"finding number {n}", kind="finding")] for n in range(3)]
    for concepts in kgs:
        load(cache, [], concepts=concepts)
    assert len(entries(cache)) == 2
    built: list = []
    load(cache, built, concepts=kgs[-1])  # the newest is kept
    load(cache, built, concepts=kgs[0])  # the oldest was removed
    assert built == [1]
