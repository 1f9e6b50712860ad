"""The read-only Cypher guard: researchers' queries must parse under a grammar that only reads.

The previous guard blanked comments, then strings, with regular expressions and searched the rest
for forbidden words, so a ``/*`` inside a string hid a later ``LOAD FROM`` or ``COPY ... TO`` (host
file read and write). Now a single-pass lexer (:mod:`graph.cypher_lexer`) and a parser whose
grammar holds only reading clauses (:mod:`graph.cypher_parser`) decide, and the text the backend
runs is re-rendered from the accepted tokens, so the database sees no quote or comment that the
parser did not. Backends still run the result on a read-only connection or session, with a
timeout and a row limit.
"""

from __future__ import annotations

from graph.cypher_functions import READ_FUNCTIONS, READ_PROCEDURES
from graph.cypher_lexer import MAX_NESTING, render, tokenize
from graph.cypher_parser import MAX_CASE_DEPTH, MAX_EXPRESSION_DEPTH, Parser
from graph.errors import QueryError

__all__ = [
    "MAX_CASE_DEPTH",
    "MAX_EXPRESSION_DEPTH",
    "MAX_NESTING",
    "MAX_QUERY_CHARS",
    "READ_FUNCTIONS",
    "READ_PROCEDURES",
    "check_read_only",
    "read_only_query",
]

MAX_QUERY_CHARS = 100_000


def check_read_only(cypher: str) -> str:
    """The query to run (comments gone, trailing ``;`` removed) if it only reads; see
    :func:`read_only_query`."""
    return read_only_query(cypher)[0]


def read_only_query(cypher: str) -> tuple[str, frozenset[str]]:
    """The query to run (comments gone, trailing ``;`` removed) if it only reads, and the names
    of the parameters it uses (``$name``).

    Raises:
        QueryError: the query is empty, too long, nested too deeply, has a NUL byte or a lone
            surrogate, more than one statement, or anything the read-only grammar does not accept (any writing,
            loading, attaching or configuring clause, a procedure or function off the lists).
    """
    if not isinstance(cypher, str):
        raise QueryError(f"query must be a string, got {type(cypher).__name__}")
    if not cypher.strip():
        raise QueryError("empty query")
    if len(cypher) > MAX_QUERY_CHARS:
        raise QueryError(f"query longer than {MAX_QUERY_CHARS} characters; shorten it")
    if "\x00" in cypher:
        raise QueryError("query contains a NUL byte")
    try:
        cypher.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate: the database cannot even receive it
        raise QueryError(
            f"query is not valid Unicode text (a lone surrogate at character {error.start}); "
            "send it as UTF-8"
        ) from None
    tokens = tokenize(cypher)
    try:
        Parser(cypher, tokens).statement()
    except RecursionError:  # a backstop: the nesting limits keep the parser far from it
        raise QueryError("query nested too deeply; flatten it") from None
    if tokens[-2].kind.value == "op" and tokens[-2].value == ";":
        tokens = [*tokens[:-2], tokens[-1]]
    names = frozenset(t.value for t in tokens if t.kind.value == "param")
    return render(tokens, cypher), names
