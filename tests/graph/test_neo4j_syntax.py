"""Every Cypher statement of the Neo4j backend, and the guide's Neo4j forms, parse as Cypher.

No Neo4j server can run here, so the statements are checked with the ANTLR openCypher grammar of
``antlr4-cypher`` (a dev dependency; the test skips with that reason when it is missing). The
grammar predates Neo4j 5's schema commands, so ``CREATE CONSTRAINT/INDEX ... IF NOT EXISTS`` are
checked by shape instead.
"""

from __future__ import annotations

import re

import pytest

from graph.cypher_docs import guide_queries
from graph.stores import neo4j_cypher
from tests.graph.neo4j_fakes import every_statement

antlr4_cypher = pytest.importorskip("antlr4_cypher", reason="pip install antlr4-cypher")


def syntax_errors(text: str) -> list[str]:
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.error.ErrorListener import ErrorListener

    class Collect(ErrorListener):
        def __init__(self) -> None:
            self.errors: list[str] = []

        def syntaxError(self, recognizer, symbol, line, column, message, error) -> None:  # noqa: N802
            self.errors.append(f"{line}:{column} {message}")

        def reportAmbiguity(self, *args) -> None:  # noqa: N802
            pass

    collect = Collect()
    lexer = antlr4_cypher.CypherLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(collect)
    parser = antlr4_cypher.CypherParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(collect)
    parser.script()
    return collect.errors


SCHEMA = set(neo4j_cypher.schema_statements())
STATEMENTS = [s for s in every_statement() if s not in SCHEMA]
NEO4J_FORMS = [q for q in guide_queries() if q.neo4j]


def test_the_grammar_rejects_broken_cypher() -> None:
    assert syntax_errors("MATCH (n RETURN n")
    assert not syntax_errors("MATCH (n:Concept {id: $id}) RETURN n.name LIMIT $rows")


@pytest.mark.parametrize("statement", STATEMENTS)
def test_backend_statement_parses(statement: str) -> None:
    assert syntax_errors(statement) == []


@pytest.mark.parametrize("query", NEO4J_FORMS, ids=[q.name for q in NEO4J_FORMS])
def test_guide_neo4j_form_parses(query) -> None:
    assert syntax_errors(query.neo4j) == []


@pytest.mark.parametrize("statement", sorted(SCHEMA))
def test_schema_statement_shape(statement: str) -> None:
    constraint = r"CREATE CONSTRAINT \w+ IF NOT EXISTS FOR \(n:\w+\) REQUIRE n\.id IS UNIQUE"
    node_index = r"CREATE INDEX \w+ IF NOT EXISTS FOR \(n:\w+\) ON \(n\.\w+\)"
    rel_index = r"CREATE INDEX \w+ IF NOT EXISTS FOR \(\)-\[r:\w+\]-\(\) ON \(r\.\w+\)"
    assert any(re.fullmatch(p, statement) for p in (constraint, node_index, rel_index))
