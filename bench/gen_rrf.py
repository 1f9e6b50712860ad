"""Generate a synthetic UMLS Metathesaurus release (MRCONSO, MRSTY, MRREL) for load benchmarks.

The files follow the real RRF layouts (18 / 6 / 16 bar-separated fields, trailing bar) and the
real release's order (MRCONSO and MRSTY sorted by CUI), with two English atoms per concept
(a preferred MeSH-like one and a SNOMED CT one with its code), a semantic type per concept, and
relations drawn at random with REL/RELA pairs from the loader's table. Seeded, so reruns match.

    .venv/bin/python bench/gen_rrf.py OUT_DIR --concepts 2000000 --relations 10000000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SEMANTIC_TYPES = (
    ("T047", "B2.2.1.2.1", "Disease or Syndrome"),
    ("T033", "A2.2", "Finding"),
    ("T184", "A2.2.2", "Sign or Symptom"),
    ("T023", "A1.2.3.1", "Body Part, Organ, or Organ Component"),
    ("T061", "B1.3.1.3", "Therapeutic or Preventive Procedure"),
    ("T121", "A1.4.1.1.1", "Pharmacologic Substance"),
)
# (REL, RELA) pairs, weighted towards hierarchy as in a real release.
RELATIONS = (
    ("PAR", "inverse_isa"),
    ("PAR", "inverse_isa"),
    ("PAR", "inverse_isa"),
    ("RO", "finding_site_of"),
    ("RO", "associated_morphology_of"),
    ("RO", "cause_of"),
    ("RO", "manifestation_of"),
    ("RB", ""),
    ("RO", "has_occurrence"),  # not in the loader's table: counted as unknown
)
CHUNK = 200_000


def cui(number: int) -> str:
    return f"C{number:07d}"


def generate(out: Path, concepts: int, relations: int, seed: int = 0) -> dict[str, float]:
    """Write the three files into ``out``; returns sizes in MB."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with (
        open(out / "MRCONSO.RRF", "w", encoding="utf-8") as conso,
        open(out / "MRSTY.RRF", "w", encoding="utf-8") as sty,
    ):
        for start in range(1, concepts + 1, CHUNK):
            stop = min(concepts + 1, start + CHUNK)
            types = rng.integers(0, len(SEMANTIC_TYPES), stop - start)
            conso_lines, sty_lines = [], []
            for number, type_index in zip(range(start, stop), types, strict=True):
                c = cui(number)
                tui, stn, sty_name = SEMANTIC_TYPES[type_index]
                code = 100000000 + number
                conso_lines.append(
                    f"{c}|ENG|P|L{number:07d}|PF|S{number:07d}|Y|A{number:08d}||M{number:07d}|"
                    f"D{number:06d}|MSH|MH|D{number:06d}|Concept {number} preferred|0|N|256|\n"
                    f"{c}|ENG|S|L{number:07d}|VO|S{number:07d}|Y|B{number:08d}|{code}|{code}||"
                    f"SNOMEDCT_US|PT|{code}|concept {number} synonym|9|N|256|\n"
                )
                sty_lines.append(f"{c}|{tui}|{stn}|{sty_name}|AT{number:08d}|256|\n")
            conso.writelines(conso_lines)
            sty.writelines(sty_lines)
    with open(out / "MRREL.RRF", "w", encoding="utf-8") as rel:
        for start in range(0, relations, CHUNK):
            size = min(CHUNK, relations - start)
            src = rng.integers(1, concepts + 1, size)
            dst = rng.integers(1, concepts + 1, size)
            kinds = rng.integers(0, len(RELATIONS), size)
            lines = []
            for offset, (a, b, k) in enumerate(zip(src, dst, kinds, strict=True)):
                rel_name, rela = RELATIONS[k]
                lines.append(
                    f"{cui(a)}|A{a:08d}|SCUI|{rel_name}|{cui(b)}|A{b:08d}|SCUI|{rela}|"
                    f"R{start + offset:09d}||SNOMEDCT_US|SNOMEDCT_US|0|Y|N||\n"
                )
            rel.writelines(lines)
    return {p.name: round(p.stat().st_size / 1e6, 1) for p in out.glob("*.RRF")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--concepts", type=int, default=2_000_000)
    parser.add_argument("--relations", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = generate(args.out, args.concepts, args.relations, args.seed)
    print(f"wrote {sizes} MB in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
