"""Recursive-descent parser for read-only Cypher: what it cannot parse, the database never sees.

The grammar below holds only reading constructs (openCypher plus the LadybugDB and Neo4j forms
the guide uses), so anything that writes, loads, attaches or configures fails to parse and is
refused: an allow-list by construction, not a list of forbidden words. Keywords are
case-insensitive; ``name`` is an ASCII identifier or a `backticked name`.

    statement   = query [";"] END
    query       = single { "UNION" ["ALL"] single }
    single      = call_proc [yield]                        (* a lone procedure call *)
                | { clause } return
    clause      = ["OPTIONAL"] "MATCH" patterns ["WHERE" expr]
                | "UNWIND" expr "AS" name
                | "WITH" projection ["WHERE" expr]
                | "CALL" "{" query "}"                     (* body ends with RETURN *)
                | call_proc [yield]
    call_proc   = "CALL" procedure ["(" [expr {"," expr}] ")"]   (* procedure: READ_PROCEDURES *)
    yield       = "YIELD" ("*" | name ["AS" name] {"," name ["AS" name]}) ["WHERE" expr]
    return      = "RETURN" projection
    projection  = ["DISTINCT"] ("*" {"," item} | item {"," item})
                  ["ORDER" "BY" expr [dir] {"," expr [dir]}] ["SKIP" expr] ["LIMIT" expr]
    item        = expr ["AS" name]
    patterns    = part {"," part}
    part        = [name "="] ( ("shortestPath" | "allShortestPaths") "(" path ")" | path )
    path        = node { rel node }
    node        = "(" [name] [labels] [map | param] ["WHERE" expr] ")"
    labels      = ":" name { ("|" | ":" | "&") [":"] name }
    rel         = ["<"] "-" ["[" [name] [":" name {"|" [":"] name}] [range] [map | param]
                  ["WHERE" expr] "]"] "-" [">"]
    range       = "*" [ "SHORTEST" | "ALL" "SHORTEST" | "TRAIL" | "ACYCLIC"
                      | ["ALL"] "WSHORTEST" "(" name ")" ]
                  [int] [".." [int]] ["(" name "," name {"|" ("WHERE" expr | "{" exprs "}"
                  "," "{" exprs "}")} ")"]
    expr        = binary operators by precedence, loosest first:
                  OR < XOR < AND < NOT (prefix) < = <> != < > <= >=
                  < STARTS WITH, ENDS WITH, CONTAINS, IN, =~, IS [NOT] NULL < + - || < * / % < ^
                  < unary + - < postfix ("." name | "[" [expr] [".." [expr]] "]" | labels)
    atom        = number | string | param | TRUE | FALSE | NULL | name
                | "(" expr ")" | "[" list "]" | "{" [key ":" expr {"," key ":" expr}] "}"
                | "CASE" [expr] ("WHEN" expr "THEN" expr)+ ["ELSE" expr] "END"
                | ("any" | "all" | "none" | "single") "(" name "IN" expr ["WHERE" expr] ")"
                | "reduce" "(" name "=" expr "," name "IN" expr "|" expr ")"
                | ("EXISTS" | "COUNT") "{" (query | patterns ["WHERE" expr]) "}"
                | "CAST" "(" expr ("AS" type | "," expr) ")"
                | function "(" ["DISTINCT"] ("*" | arg {"," arg}) ")"  (* READ_FUNCTIONS *)
    arg         = (name | "(" name {"," name} ")") "->" expr | expr    (* lambda *)
    list        = [ expr {"," expr}
                  | name "IN" expr ["WHERE" expr] ["|" expr]        (* comprehension *)
                  | [name "="] path ["WHERE" expr] "|" expr ]       (* pattern comprehension *)

Beyond the brackets the lexer counts, the parser bounds the expression tree's depth (a chain of
10,000 ``+`` crashes LadybugDB) and the nesting of CASE (its parser slows exponentially with it).
"""

from __future__ import annotations

from graph.cypher_cursor import CLAUSE_WORDS, REFUSED
from graph.cypher_expressions import MAX_CASE_DEPTH, MAX_EXPRESSION_DEPTH, ExpressionParser
from graph.cypher_functions import READ_PROCEDURES
from graph.cypher_lexer import Kind, where
from graph.errors import QueryError

__all__ = ["MAX_CASE_DEPTH", "MAX_EXPRESSION_DEPTH", "Parser"]


class Parser(ExpressionParser):
    """Checks one token list against the read-only grammar; :meth:`statement` raises or returns."""

    # ------------------------------------------------------------------ statements
    def statement(self) -> None:
        self.query(require_return=True)
        semicolon = self.accept_op(";")
        if self.peek().kind is not Kind.END:
            if semicolon:
                second = self.peek()
                also = f"; {self.fail('').args[0]}" if second.upper in REFUSED else ""
                raise QueryError(
                    "only one statement per query is allowed on the read-only path (a second "
                    f"one starts at {where(self.text, second)}); run them one by one{also}"
                )
            raise self.fail("a clause or the end of the query")

    def query(self, *, require_return: bool) -> None:
        self.single(require_return=require_return)
        while self.accept_kw("UNION"):
            self.accept_kw("ALL")
            self.single(require_return=True)

    def single(self, *, require_return: bool) -> None:
        clauses = 0
        while True:
            if self.is_kw("MATCH") or self.is_kw("OPTIONAL"):
                self.match()
            elif self.accept_kw("UNWIND"):
                self.expression()
                self.expect_kw("AS")
                self.name("a variable after AS")
            elif self.accept_kw("WITH"):
                self.projection()
                self.where()
            elif self.is_kw("CALL"):
                standalone = self.call()
                if standalone and clauses == 0 and self.peek().upper not in CLAUSE_WORDS:
                    return  # CALL db.labels() [YIELD ...] on its own
            elif self.accept_kw("RETURN"):
                self.projection()
                return
            else:
                break
            clauses += 1
        if require_return or clauses == 0:
            raise self.fail("MATCH, OPTIONAL MATCH, WITH, UNWIND, CALL or RETURN")

    def match(self) -> None:
        self.accept_kw("OPTIONAL")
        self.expect_kw("MATCH")
        self.patterns()
        self.where()

    def where(self) -> None:
        if self.accept_kw("WHERE"):
            self.expression()

    def call(self) -> bool:
        """A CALL clause; returns whether it was a procedure call (which may stand alone)."""
        call = self.take()
        if self.is_op("{"):
            self.braced_query(require_return=True)
            return False
        names = [self.name("a procedure name after CALL", keywords=True)]
        while self.accept_op("."):
            names.append(self.name("a procedure name", keywords=True))
        procedure = ".".join(names)
        if self.is_op("="):
            raise QueryError(
                f"CALL {procedure}=... changes a database setting; settings such as the timeout "
                "are fixed by kgdx on the read-only path"
            )
        if procedure.lower() not in READ_PROCEDURES:
            raise QueryError(
                f"CALL {procedure} ({where(self.text, call)}) is not on the read-only procedure "
                f"list {sorted(READ_PROCEDURES)}"
            )
        if self.accept_op("("):
            self.arguments(")")
        if self.accept_kw("YIELD"):
            if not self.accept_op("*"):
                self.yield_item()
                while self.accept_op(","):
                    self.yield_item()
            self.where()
        return True

    def yield_item(self) -> None:
        self.name("a column name after YIELD")
        if self.accept_kw("AS"):
            self.name("a variable after AS")

    def braced_query(self, *, require_return: bool) -> None:
        self.expect_op("{")
        self.query(require_return=require_return)
        self.expect_op("}")

    def projection(self) -> None:
        self.accept_kw("DISTINCT")
        if self.accept_op("*"):
            more = self.accept_op(",")
        else:
            more = True
        while more:
            self.expression()
            if self.accept_kw("AS"):
                self.name("a column name after AS (backtick a keyword)")
            more = self.accept_op(",")
        if self.accept_kw("ORDER", "BY"):
            while True:
                self.expression()
                for word in ("ASC", "ASCENDING", "DESC", "DESCENDING"):
                    if self.accept_kw(word):
                        break
                if not self.accept_op(","):
                    break
        if self.accept_kw("SKIP"):
            self.expression()
        if self.accept_kw("LIMIT"):
            self.expression()

    # ------------------------------------------------------------------ patterns
    def patterns(self) -> None:
        self.pattern_part()
        while self.accept_op(","):
            self.pattern_part()

    def pattern_part(self) -> None:
        if self.is_name() and self.is_op("=", 1):
            self.pos += 2
        word = self.peek().value.lower() if self.peek().kind is Kind.NAME else ""
        if word in ("shortestpath", "allshortestpaths") and self.is_op("(", 1):
            self.pos += 2
            self.path()
            self.expect_op(")")
        else:
            self.path()

    def path(self) -> None:
        self.node()
        while self.is_op("-") or (self.is_op("<") and self.is_op("-", 1)):
            self.relationship()
            self.node()

    def node(self) -> None:
        self.expect_op("(")
        if self.is_name():
            self.take()
        if self.is_op(":"):
            self.labels()
        self.properties()
        self.where()
        self.expect_op(")")

    def labels(self) -> None:
        self.expect_op(":")
        self.name("a label", keywords=True)
        while self.is_op("|") or self.is_op(":") or self.is_op("&"):
            self.take()
            self.accept_op(":")
            self.name("a label", keywords=True)

    def properties(self) -> None:
        if self.is_op("{"):
            self.atom()
        elif self.peek().kind is Kind.PARAM:
            self.take()

    def relationship(self) -> None:
        self.accept_op("<")
        self.expect_op("-")
        if self.accept_op("["):
            if self.is_name():
                self.take()
            if self.accept_op(":"):
                self.name("a relationship type", keywords=True)
                while self.accept_op("|"):
                    self.accept_op(":")
                    self.name("a relationship type", keywords=True)
            self.properties()
            if self.accept_op("*"):
                self.recursion()
            self.properties()
            self.where()
            self.expect_op("]")
        self.expect_op("-")
        self.accept_op(">")

    def recursion(self) -> None:
        if self.accept_kw("ALL"):
            if not (self.accept_kw("SHORTEST") or self.weighted()):
                raise self.fail("SHORTEST or WSHORTEST after ALL")
        elif not (self.accept_kw("SHORTEST") or self.accept_kw("TRAIL") or self.weighted()):
            self.accept_kw("ACYCLIC")
        self.integer()
        if self.accept_op(".."):
            self.integer()
        if not self.accept_op("("):
            return
        self.name("a relationship variable")
        self.expect_op(",")
        self.name("a node variable")
        while self.accept_op("|"):
            if self.accept_kw("WHERE"):
                self.expression()
            else:
                self.atom()  # {r.prop, ...}
                self.expect_op(",")
                self.atom()  # {n.prop, ...}
        self.expect_op(")")

    def weighted(self) -> bool:
        if not self.accept_kw("WSHORTEST"):
            return False
        self.expect_op("(")
        self.name("a weight property", keywords=True)
        self.expect_op(")")
        return True

    def integer(self) -> None:
        token = self.peek()
        if token.kind is Kind.NUMBER:
            if not token.value.isdigit():
                raise self.fail("a whole number of hops")
            self.take()
