"""``kgdx extract report`` and ``kgdx eval text``: report findings and their evaluation."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from extractors.text import ReportExtractor
    from graph.records import Finding

KG_CHOICES = ("auto", "store", "seed", "lexicon")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add ``extract report`` and ``eval text``."""
    groups["extract"].command("report")(extract_report)
    groups["eval"].command("text")(eval_text)


def _read_report(report: str | None, text: str | None, max_chars: int) -> tuple[str | bytes, str]:
    """The report to extract from and its doc id: a file's bytes, stdin's (``-``) or ``--text``.

    A path is only ever a path: a mistyped name must not be read as a report that has no
    findings, so it fails with a message that says how to pass literal text. Only a regular
    file is read (``/dev/zero`` or a FIFO would never end), and no more than a report of
    ``max_chars`` characters can take (4 bytes a character in UTF-8), so a huge input fails at
    once instead of filling memory.

    Raises:
        InputError: both or neither given; a path that is missing, a directory, not a regular
            file or unreadable; a report longer than ``max_chars`` (``KGDX_MAX_REPORT_CHARS``).
    """
    from graph.errors import InputError

    if (report is None) == (text is None):
        raise InputError(
            "give one report: a file path, '-' to read stdin, or --text 'the report text'"
        )
    too_long = (
        f"the report is longer than {max_chars:,} characters (KGDX_MAX_REPORT_CHARS); "
        "split it, or raise the limit"
    )
    if text is not None:
        if len(text) > max_chars:
            raise InputError(too_long)
        return text, "text"
    assert report is not None
    max_bytes = 4 * max_chars
    if report == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        doc_id = "stdin"
    else:
        path = Path(report)
        try:
            mode = path.stat().st_mode
            if stat.S_ISDIR(mode):
                raise InputError(f"{report} is a directory, not a report file; give the file in it")
            if not stat.S_ISREG(mode):
                raise InputError(
                    f"{report} is not a regular file (a device, pipe or socket); give a report "
                    "file, or '-' to read stdin"
                )
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise InputError(
                f"{report}: no such report file; to extract from literal text use "
                "--text 'the report text' (or '-' to read stdin)"
            ) from None
        except OSError as exc:
            raise InputError(f"cannot read the report file {report}: {exc.strerror}") from None
        doc_id = path.stem
    if len(data) > max_bytes or len(data.decode("utf-8", "ignore")) > max_chars:
        raise InputError(too_long)
    return data, doc_id


def build_extractor(
    kg: str = "auto", *, lexicon: bool = True, progress: bool = True
) -> ReportExtractor:
    """An extractor over the chosen vocabulary, read from the extractor cache when it holds one.

    The matcher and linker are built once per KG content hash and kept under
    ``Settings.resolved_extract_cache_dir`` (:mod:`extractors.text.cache`); a build shows its
    progress on stderr.

    Args:
        kg: ``store`` (the configured graph store's concepts), ``seed`` (the shipped chest seed
            KG), ``lexicon`` (the label map's radiology lexicon only) or ``auto`` (the store when
            its database exists and holds concepts, else the seed KG).
        lexicon: add the ChestX-ray14 label map's radiology lexicon to the vocabulary.
        progress: show a progress bar when the extractor must be built.

    Raises:
        ConfigError: unknown ``kg``, or ``store`` with no built store.
    """
    from extractors.text.light_imports import light_nlp_imports

    light_nlp_imports()  # before spaCy loads: no torch, NLTK deferred (the command then exits)
    from extractors.text.cache import extractor_for_concepts, extractor_for_table
    from extractors.text.labels import LabelMap
    from graph.errors import ConfigError
    from graph.settings import get_settings

    if kg not in KG_CHOICES:
        raise ConfigError(f"unknown --kg {kg!r}; expected one of {KG_CHOICES}")
    extra = LabelMap.load().extra_synonyms() if lexicon else None
    settings = get_settings()
    options = {"settings": settings, "extra_synonyms": extra, "progress": progress}
    use_store = kg == "store" or (kg == "auto" and settings.resolved_db_path.exists())
    if kg in ("store", "auto") and use_store:
        from graph.kg_hash import read_concept_table
        from graph.stores import open_store

        # One read gives the KG's content hash and, when the cache misses, its concepts; the
        # store is closed before anything is built.
        with open_store(settings=settings, read_only=True) as store:  # works beside a server
            table = read_concept_table(store)
        if table.num_rows or kg == "store":
            if not table.num_rows:
                raise ConfigError("the graph store holds no concepts; run `kgdx kg build` first")
            return extractor_for_table(table, what="KG store", **options)
    if kg == "lexicon":
        return extractor_for_concepts((), what="radiology lexicon", **options)
    from kg_loaders.seed import read_seed_concepts

    return extractor_for_concepts(read_seed_concepts(), what="seed KG", **options)


def _finding_row(finding: Finding, extractor: ReportExtractor) -> dict[str, object]:
    """One finding for ``--json`` (full-precision numbers; ``section`` null when unknown)."""
    span = finding.provenance
    return {
        "concept_id": finding.concept_id,
        "name": extractor.concept_name(finding.concept_id),
        "assertion": finding.assertion.status,
        **finding.assertion.model_dump(mode="json"),
        "confidence": finding.confidence,
        "section": span.section,
        "start": span.start,
        "end": span.end,
        "text": span.text,
        "sentence": span.sentence,
    }


def _assertion_words(row: dict[str, object]) -> str:
    """``present`` plus whatever departs from a definite, current finding of the patient."""
    words = [str(row["polarity"])]
    words += [str(row[key]) for key, usual in _USUAL.items() if row[key] != usual]
    return " ".join(words)


_USUAL = {"certainty": "definite", "temporality": "current", "experiencer": "patient"}


def extract_report(
    report: Annotated[
        str | None,
        typer.Argument(help="A report file (UTF-8), or '-' to read the report from stdin."),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="The report text itself, instead of a file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON.")] = False,
    kg: Annotated[str, typer.Option(help="Vocabulary: auto | store | seed | lexicon.")] = "auto",
) -> None:
    """Extract KG-linked findings (with negation, uncertainty, history, family) from a report.

    Each finding names its report section (``findings``, ``impression``, ...; ``-`` in the
    table and ``null`` in the JSON when no header precedes it), so a task can choose which
    sections to read.
    """
    from api.commands.table import console, human_number, make_table
    from graph.settings import get_settings

    content, doc_id = _read_report(report, text, get_settings().max_report_chars)
    extractor = build_extractor(kg)
    findings = extractor.extract(content, doc_id)
    rows = [_finding_row(finding, extractor) for finding in findings]
    if as_json:
        typer.echo(json.dumps({"doc_id": doc_id, "findings": rows}, indent=2))
        return
    cells = [
        (
            str(row["concept_id"]),
            str(row["name"]),
            _assertion_words(row),
            human_number(float(row["confidence"])),  # type: ignore[arg-type]
            str(row["section"] or "-"),
            str(row["text"]),
        )
        for row in rows
    ]
    columns = ("concept", "name", "assertion", "conf", "section", "text")
    title = f"{len(rows)} finding(s) in {doc_id}"
    console().print(make_table(columns, cells, title=title, right=("conf",)))


def eval_text(
    reports: Annotated[Path, typer.Option(help="Reports CSV (indiana_reports.csv layout).")],
    labels: Annotated[Path, typer.Option(help="Gold labels CSV (openi_gld_std14.csv layout).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON here.")
    ] = None,
    kg: Annotated[
        str, typer.Option(help="Vocabulary besides the label lexicon: lexicon | seed | store.")
    ] = "lexicon",
    count_possible: Annotated[
        bool, typer.Option(help="Count hedged (possible) findings as positive.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N reports.")] = None,
) -> None:
    """Score kgdx, a negation-blind matcher and negspacy's NegEx on labelled reports."""
    from rich.console import Console
    from rich.table import Table

    from extractors.text.evaluation import format_table
    from extractors.text.run_eval import evaluate_text
    from graph.errors import ConfigError

    if kg not in ("lexicon", "seed", "store"):
        raise ConfigError(f"unknown --kg {kg!r}; expected lexicon, seed or store")
    store = concepts = None
    if kg == "seed":
        from kg_loaders.seed import read_seed_concepts

        concepts = read_seed_concepts()
    if kg == "store":
        from graph.stores import open_store

        store = open_store(read_only=True)  # reads concepts only: works beside a server
    try:
        result = evaluate_text(
            reports_csv=reports,
            labels_csv=labels,
            store=store,
            concepts=concepts,
            count_possible=count_possible,
            limit=limit,
        )
    finally:
        if store is not None:
            store.close()
    rows = format_table([run.score for run in result.runs])
    table = Table(title=f"{result.runs[0].score.reports} reports", title_justify="left")
    for column in rows[0]:
        table.add_column(column.replace(" P/R/F1", "\nP/R/F1"), overflow="fold")
    for row in rows[1:]:
        table.add_row(*row)
    console = Console()
    console.print(table)
    speed = Table(title="speed (this run, this machine)", title_justify="left")
    for column in ("system", "seconds", "reports/s", "words/s"):
        speed.add_column(column)
    for run in result.runs:
        speed.add_row(
            run.score.system,
            f"{run.seconds:.1f}",
            f"{run.reports_per_s:.0f}",
            f"{run.words_per_s:,.0f}",
        )
    console.print(speed)
    if json_out is not None:
        console.print(f"written {result.save_json(json_out)}")
