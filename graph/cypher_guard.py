"""Lexical guard for the read-only Cypher path.

Backends also run researchers' queries on a read-only connection or session; this guard rejects
writes earlier, with a clear message, including writes hidden after comments, inside string-free
subqueries (``CALL { ... }``) or behind a second statement.
"""

from __future__ import annotations

import re

from graph.errors import QueryError

MAX_QUERY_CHARS = 100_000

# Clauses that write, load or change the database or its settings.
WRITE_KEYWORDS = (
    "CREATE",
    "MERGE",
    "SET",
    "DELETE",
    "DETACH",
    "REMOVE",
    "DROP",
    "ALTER",
    "COPY",
    "LOAD",
    "IMPORT",
    "EXPORT",
    "INSTALL",
    "ATTACH",
    "DETACH",
    "USE",
    "CHECKPOINT",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "FOREACH",
    "GRANT",
    "REVOKE",
    "DENY",
    "START",
    "STOP",
    "TERMINATE",
    "RENAME",
)
# Procedures researchers may CALL: read-only catalogue functions of LadybugDB and Neo4j.
READ_PROCEDURES = frozenset(
    {
        "show_tables",
        "table_info",
        "show_connection",
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.indexes",
        "db.constraints",
    }
)

_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)
_BACKTICK_RE = re.compile(r"`(?:[^`]|``)*`")
_WRITE_RE = re.compile(r"(?<![.$\w])(" + "|".join(sorted(set(WRITE_KEYWORDS))) + r")\b", re.I)
_CALL_RE = re.compile(r"\bCALL\b\s*(\{|[A-Za-z_][\w.]*)", re.I)


def _strip(cypher: str) -> str:
    """Blank out comments, string literals and quoted names so keywords inside them don't count."""
    text = _COMMENT_RE.sub(" ", cypher)
    text = _STRING_RE.sub("''", text)
    return _BACKTICK_RE.sub("_q_", text)


def check_read_only(cypher: str) -> str:
    """Return the query (trailing ``;`` removed) if it only reads, else raise :class:`QueryError`."""
    if not cypher or not cypher.strip():
        raise QueryError("empty query")
    if len(cypher) > MAX_QUERY_CHARS:
        raise QueryError(f"query longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in cypher:
        raise QueryError("query contains a NUL byte")
    if "/*" in _STRING_RE.sub("''", cypher) and "*/" not in cypher:
        raise QueryError("unterminated /* comment */ in query")
    bare = _strip(cypher).strip()
    if bare.count("'") % 2 or bare.count('"') % 2:
        raise QueryError("unterminated string literal in query")
    body = bare.rstrip(";").strip()
    if ";" in body:
        raise QueryError("only one statement per query is allowed on the read-only path")
    match = _WRITE_RE.search(body)
    if match:
        raise QueryError(
            f"writing clause {match.group(1).upper()} is not allowed on the read-only query path; "
            "use the kgdx API or CLI to change the graph"
        )
    for call in _CALL_RE.finditer(body):
        target = call.group(1)
        if target == "{":
            continue  # subquery body is checked by the keyword scan above
        if target.lower() not in READ_PROCEDURES:
            raise QueryError(
                f"CALL {target} is not on the read-only procedure list {sorted(READ_PROCEDURES)}"
            )
    return cypher.strip().rstrip(";").strip()
