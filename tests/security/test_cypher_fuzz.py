"""Fuzz test of the read-only Cypher path (issue 11): generated reads plus hostile mutations.

Queries are built by hypothesis strategies that follow the productions of the read-only grammar
(:mod:`graph.cypher_parser`), then mutated: hostile fragments spliced in (``LOAD FROM`` a canary
file, ``COPY ... TO`` a file, ``CALL timeout=0``, ``;``, quote, comment and backtick tricks) and
random character edits. Every query goes through the public ``store.query`` of a real embedded
store, whatever path that takes (guard, read-only connection, worker process). Asserted for each:
it returns a result or raises QueryError, nothing else; the canary's content never comes back; no
file appears in the temporary tree outside the database's own; it answers within timeout + 1 s.
Bounded for CI: fixed example counts, ``derandomize=True`` and an overall time budget.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from graph.cypher_guard import check_read_only
from graph.errors import QueryError
from graph.settings import Settings
from graph.stores import open_store
from tests.docs.conftest import load_guide_graph

SECRET = "kgdx-fuzz-canary-51d2e0"
TIMEOUT_S = 2.0
BUDGET_S = 25.0  # per test; the module stays under 60 s
FUZZ = hypothesis_settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "secret.txt").write_text(f"{SECRET},a\n{SECRET},b\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def kg(tree):
    settings = Settings(home=tree / "home", db_path=tree / "db" / "kg.lbug")
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
        yield store


def _outside_files(tree: Path) -> set[Path]:
    db = tree / "db"
    return {p for p in tree.rglob("*") if p.is_file() and db not in p.parents}


# ---------------------------------------------------------------------- grammar strategies
VARIABLES = ("c", "p", "d", "f", "x")
LABELS = ("Concept", "Patient", "Report", "Prediction")
REL_TYPES = ("HAS_FINDING", "IS_A", "DIAGNOSED_WITH", "HAS_SYMPTOM", "MENTIONS")
PROPERTIES = ("id", "name", "kind", "polarity", "synonyms", "`end`", "`LOAD`")
FUNCTIONS = ("lower", "upper", "size", "abs", "coalesce", "to_string", "trim", "typeof")
TRICKY_TEXT = st.lists(
    st.sampled_from([*"ab /*;'\"`\\\n", "LOAD", "COPY", "*/", "//"]), max_size=8
).map("".join)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _backtick(text: str) -> str:
    return "`" + (text or "q").replace("`", "``") + "`"


variables = st.sampled_from(VARIABLES)
LOCALS = st.sampled_from(("y", "z", "w", "v"))
literals = st.one_of(
    st.integers(-20, 20).map(str),
    st.floats(-10, 10, allow_nan=False).map(lambda v: repr(round(v, 3))),
    TRICKY_TEXT.map(_quote),
    st.sampled_from(["true", "false", "null", "$p"]),
)
atoms = st.one_of(
    literals,
    variables,
    st.tuples(variables, st.sampled_from(PROPERTIES)).map(".".join),
    LOCALS,
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "=", "<>", "<", ">=", "AND", "OR", "XOR", "CONTAINS",
                              "STARTS WITH", "IN", "=~"])  # fmt: skip
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"(NOT {e})"),
        inner.map(lambda e: f"{e} IS NULL"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, inner).map(lambda t: f"{{k: {t[0]}, `a b`: {t[1]}}}"),
        st.tuples(st.sampled_from(FUNCTIONS), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner, inner).map(
            lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"
        ),
        st.tuples(LOCALS, inner, inner).map(lambda t: f"[{t[0]} IN [1, 2] WHERE {t[1]} | {t[2]}]"),
        st.tuples(LOCALS, inner).map(lambda t: f"any({t[0]} IN [1, 2] WHERE {t[1]})"),
        st.tuples(LOCALS, inner).map(lambda t: f"list_transform([1, 2], {t[0]} -> {t[1]})"),
    )


expressions = st.recursive(atoms, _compound, max_leaves=8)

# Typed expressions over a bound ``c:Concept``, so that most generated queries run for real.
ints = st.recursive(
    st.one_of(st.integers(0, 9).map(str), st.just("size(c.name)")),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from("+-*"), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"abs({e})"),
    ),
    max_leaves=4,
)
strs = st.recursive(
    st.one_of(TRICKY_TEXT.map(_quote), st.sampled_from(["c.name", "c.id", "c.kind"])),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} + {t[1]})"),
        inner.map(lambda e: f"lower({e})"),
        inner.map(lambda e: f"trim({e})"),
    ),
    max_leaves=4,
)
bools = st.recursive(
    st.one_of(
        st.tuples(ints, st.sampled_from(["<", "=", ">=", "<>"]), ints).map(" ".join),
        st.tuples(strs, st.sampled_from(["CONTAINS", "STARTS WITH", "ENDS WITH", "="]), strs).map(
            " ".join
        ),
        strs.map(lambda e: f"{e} IS NOT NULL"),
        ints.map(lambda e: f"any(y IN [1, 2] WHERE y = {e})"),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR", "XOR"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda e: f"(NOT {e})"),
    ),
    max_leaves=4,
)
typed = st.one_of(ints, strs, bools, ints.map(lambda e: f"CASE WHEN {e} > 3 THEN 'big' END"))


@st.composite
def node_patterns(draw) -> str:
    var = draw(st.sampled_from(("", *VARIABLES)))
    label = draw(st.sampled_from(("", *(f":{name}" for name in LABELS))))
    props = draw(st.sampled_from(("", " {id: $p}", " {name: 'x /* y'}")))
    return f"({var}{label}{props})"


@st.composite
def patterns(draw) -> str:
    text = draw(node_patterns())
    for _ in range(draw(st.integers(0, 2))):
        types = "|".join(draw(st.lists(st.sampled_from(REL_TYPES), min_size=0, max_size=2)))
        hops = draw(st.sampled_from(("", "*1..2", "* SHORTEST 1..3")))
        detail = f"[{':' + types if types else ''}{hops}]"
        left, right = draw(st.sampled_from((("-", "->"), ("<-", "-"), ("-", "-"))))
        text += f"{left}{detail}{right}{draw(node_patterns())}"
    return text


@st.composite
def read_queries(draw) -> str:
    """A read query: mostly over a bound ``c:Concept`` with typed expressions, some chaos."""
    clauses = []
    chaos = draw(st.integers(0, 4)) == 0
    if not chaos:
        clauses.append(f"MATCH (c:Concept) WHERE {draw(bools)}")
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(("match", "optional", "unwind", "with")))
        if kind in ("match", "optional"):
            where = draw(st.one_of(st.just(""), expressions.map(lambda e: f" WHERE {e}")))
            prefix = "OPTIONAL MATCH" if kind == "optional" else "MATCH"
            clauses.append(f"{prefix} {draw(patterns())}{where}")
        elif kind == "unwind":
            clauses.append(f"UNWIND {draw(expressions)} AS {draw(LOCALS)}")
        elif not chaos:
            clauses.append(f"WITH c, {draw(typed)} AS {draw(LOCALS)}")
    items = draw(st.lists(expressions if chaos else typed, min_size=1, max_size=3))
    body = ", ".join(f"{item} AS {_backtick(str(n) + draw(TRICKY_TEXT))}" for n, item in
                     enumerate(items))  # fmt: skip
    tail = draw(st.sampled_from(("", " ORDER BY 1", " LIMIT 3", " SKIP 1 LIMIT 2")))
    single = " ".join([*clauses, f"RETURN {draw(st.sampled_from(('', 'DISTINCT ')))}{body}{tail}"])
    query = f"{single} UNION ALL {single}" if draw(st.integers(0, 5)) == 0 else single
    comment = draw(st.sampled_from(("", " // LOAD FROM x", " /* COPY ; */", "\n")))
    return query + comment + draw(st.sampled_from(("", ";")))


def hostile_fragments(tree: Path) -> list[str]:
    secret = tree / "secret.txt"
    return [
        f" LOAD FROM '{secret}' RETURN * ",
        f" LOAD FROM '{secret}' (file_format='csv', header=false) RETURN column0 ",
        f"; COPY (MATCH (p:Patient) RETURN p.id) TO '{tree / 'out.csv'}'; ",
        f" COPY (RETURN 1) TO '{tree / 'out2.csv'}' ",
        f" LOAD EXTENSION '{tree / 'nope.so'}' ",
        f" ATTACH '{tree / 'other.lbug'}' AS o (dbtype lbug) ",
        f" EXPORT DATABASE '{tree / 'export'}' ",
        f" CALL read_csv('{secret}') RETURN * ",
        " CALL timeout=0 ",
        " CALL threads=1 ",
        ";",
        "'/*'",
        "'*/'",
        "`/*`",
        "`'`",
        "/*",
        "*/",
        "//",
        "'",
        '"',
        "`",
        "\\",
        "\\'",
        " CREATE (:Patient {id: 'fuzz'}) ",
        " DETACH DELETE p ",
        " SET c.name = 'x' ",
    ]


def hostile_tails(tree: Path) -> list[str]:
    """Endings that read the canary back or write a file, hidden the ways the old guard missed."""
    load = f"LOAD FROM '{tree / 'secret.txt'}' (file_format='csv', header=false, delim='|')"
    copy = f"COPY (MATCH (p:Patient) RETURN p.id) TO '{tree / 'out.csv'}'"
    return [
        f" WITH '/*' AS q {load} RETURN column0 AS leak, '*/' AS r",
        f" UNWIND [1] AS `'` {load} RETURN column0, 1 AS `'`",
        f" WITH 1 AS `/*` {load} RETURN column0, 1 AS `*/`",
        f' WITH "/*" AS q {load} RETURN column0, "*/" AS r',
        f" RETURN '/*' AS a; {copy}; RETURN '*/' AS b",
        f" {load} RETURN column0",
    ]


# Ways the old guard was fooled: a comment opener hidden in a string or backticked name.
TRICKS = (
    " {} ",
    " WITH '/*' AS q {} WITH '*/' AS r ",
    " WITH 1 AS `/*` {} WITH 1 AS `*/` ",
    " WITH 1 AS `'` {} WITH 1 AS `'` ",
    ' WITH "/*" AS q {} WITH "*/" AS r ',
    " WITH '\\'/*' AS q {} // */\n",
)
EDIT_CHARS = list("'\"`/*;\\()[]{}$:-<>|.,\n ") + ["LOAD", "COPY", "CALL", "UNION"]


@st.composite
def mutated_queries(draw, tree: Path) -> str:
    query = draw(read_queries())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(query)))
        action = draw(
            st.sampled_from(("tail", "boundary", "fragment", "insert", "delete", "replace"))
        )
        boundaries = [m.start() for m in re.finditer(r" (?=MATCH|RETURN|UNWIND|WITH|UNION)", query)]
        if action == "boundary" and boundaries:  # a whole clause between two clauses
            at = draw(st.sampled_from(boundaries))
            trick = draw(st.sampled_from(TRICKS))
            query = (
                query[:at]
                + trick.format(draw(st.sampled_from(hostile_fragments(tree))))
                + query[at:]
            )
        elif action == "tail" and boundaries:  # the rest of the query replaced by a hostile one
            at = draw(st.sampled_from(boundaries))
            query = query[:at] + draw(st.sampled_from(hostile_tails(tree)))
        elif action == "fragment":
            query = query[:at] + draw(st.sampled_from(hostile_fragments(tree))) + query[at:]
        elif action == "insert":
            query = query[:at] + draw(st.sampled_from(EDIT_CHARS)) + query[at:]
        elif action == "delete":
            query = query[:at] + query[at + draw(st.integers(1, 3)) :]
        else:
            query = query[:at] + draw(st.sampled_from(EDIT_CHARS)) + query[at + 1 :]
    return query


# ---------------------------------------------------------------------- the checks
def _run_one(kg, tree: Path, before: set[Path], query: str, stats: Counter) -> None:
    started = time.monotonic()
    try:
        result = kg.query(query, {"p": "UMLS:C0018802"}, timeout_s=TIMEOUT_S, row_limit=50)
    except QueryError as error:
        stats["refused"] += 1
        assert SECRET not in str(error), query
    else:
        stats["answered"] += 1
        assert SECRET not in repr(result.rows) + repr(result.columns), query
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + 1, f"{elapsed:.1f} s for {query!r}"
    assert _outside_files(tree) == before, f"a file appeared after {query!r}"
    stats["examples"] += 1


def test_generated_reads_pass_the_guard_and_stay_inside(kg, tree) -> None:
    before, stats, deadline = _outside_files(tree), Counter(), time.monotonic() + BUDGET_S

    @hypothesis_settings(FUZZ, max_examples=300)
    @given(query=read_queries())
    def run(query: str) -> None:
        if time.monotonic() > deadline:
            stats["skipped"] += 1
            return
        try:
            check_read_only(query)
            stats["accepted"] += 1
        except QueryError as error:
            pytest.fail(f"a query generated from the grammar was refused: {query!r}: {error}")
        _run_one(kg, tree, before, query, stats)

    run()
    print(f"generated: {dict(stats)}")
    assert stats["examples"] >= 50 and stats["accepted"] == stats["examples"]
    assert stats["answered"] >= 0.1 * stats["examples"], stats  # the rest: binder errors


def test_mutated_queries_never_escape(kg, tree) -> None:
    before, stats, deadline = _outside_files(tree), Counter(), time.monotonic() + BUDGET_S

    @hypothesis_settings(FUZZ, max_examples=1200)
    @given(query=mutated_queries(tree))
    def run(query: str) -> None:
        if time.monotonic() > deadline:
            stats["skipped"] += 1
            return
        if "INSTALL" in query.upper():  # never let INSTALL reach LadybugDB (it downloads)
            with pytest.raises(QueryError):
                check_read_only(query)
            return
        _run_one(kg, tree, before, query, stats)

    run()
    print(f"mutated: {dict(stats)}")
    assert stats["examples"] >= 300 and stats["refused"] > 0, stats
