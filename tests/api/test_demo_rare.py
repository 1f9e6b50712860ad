"""The rare-disease part of ``kgdx demo``: skipped without the cases, else real held-out cases
diagnosed with paths by a model trained in the demo (nothing of the cohort in the repository)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from api.commands.demo_rare import run_rare_demo

ROOT = Path(__file__).resolve().parents[2]


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False), out


def test_without_the_cases_the_part_says_so_and_is_skipped(tmp_path):
    console, out = _console()
    assert run_rare_demo(console, home=tmp_path / "home", data=tmp_path / "absent") is None
    assert "skipped: no Phenopacket Store cases at" in out.getvalue()
    assert not (tmp_path / "home").exists()  # nothing built, nothing written


@pytest.mark.slow
def test_held_out_cases_are_diagnosed_with_paths(shared_data, tmp_path):
    console, out = _console()
    home = tmp_path / "home"
    shown = run_rare_demo(
        console, home=home, data=shared_data / "phenopackets", cases=2, every=20, paths=2
    )
    text = out.getvalue()
    assert shown is not None and len(shown["cases"]) == 2
    train_ids = set((home / "demo-rare" / "run" / "card.json").read_text().split('"'))
    for case in shown["cases"]:
        assert case["id"] not in train_ids  # held out: never trained on
        assert f"case {case['id']} (held out)" in text
        assert 1 <= case["ranks"]["kgdx"] <= 8469 and 1 <= case["ranks"]["phenomizer"] <= 8469
        assert f"kgdx {case['ranks']['kgdx']:,}," in text
        assert case["diagnoses"] and all(d["paths"] for d in case["diagnoses"])
    assert len(re.findall(r"patient -HAS_FINDING(?: \(absent\))?-> HP:\d{7} ", text)) >= 4
    assert "<-HAS_PHENOTYPE (frequency" in text and re.search(r"p=\d\.\d{3}", text)
    assert (home / "demo-rare" / "kg.lbug").exists() and not (home / "kg.lbug").exists()
    assert f"kgdx diagnose --model {home / 'demo-rare' / 'run'}" in text.replace("\n", "")
    # the run (with the training cases' terms) stays in the home folder, never in the repository
    assert not list((ROOT / "data").rglob("memory.json"))
