"""Expression rules of the read-only Cypher parser (see :mod:`graph.cypher_parser` for the grammar).

Binary operators are parsed by precedence climbing, so a nesting level costs a handful of Python
frames and the lexer's bracket limit keeps recursion far from Python's limit. Each rule returns the
depth of the expression tree it read: LadybugDB crashes on a chain of 10,000 ``+`` without any
bracket, so the depth, not only the brackets, is bounded. Function names are checked against
:data:`graph.cypher_functions.READ_FUNCTIONS`.
"""

from __future__ import annotations

from graph.cypher_cursor import CLAUSE_WORDS, TokenCursor
from graph.cypher_functions import READ_FUNCTIONS
from graph.cypher_lexer import Kind, Token, where
from graph.errors import QueryError

MAX_EXPRESSION_DEPTH = 500
MAX_CASE_DEPTH = 10  # LadybugDB's parse time grows exponentially with nested CASE
_COMPARISON = {"=", "<>", "!=", "<", ">", "<=", ">="}
_QUANTIFIERS = {"ANY", "ALL", "NONE", "SINGLE"}


class ExpressionParser(TokenCursor):
    """Expression rules; pattern and query rules (``path``, ``query``, ...) come from the subclass."""

    # Defined by graph.cypher_parser.Parser: patterns and subqueries nest inside expressions.
    def query(self, *, require_return: bool) -> None:
        raise NotImplementedError

    def patterns(self) -> None:
        raise NotImplementedError

    def path(self) -> None:
        raise NotImplementedError

    def labels(self) -> None:
        raise NotImplementedError

    def where(self) -> None:
        raise NotImplementedError

    def expression(self) -> int:
        """One expression; returns the depth of its tree."""
        depth = self.binary(1)
        if depth > MAX_EXPRESSION_DEPTH:
            raise self.too_deep()
        return depth

    def too_deep(self) -> QueryError:
        return QueryError(
            f"expression nested deeper than {MAX_EXPRESSION_DEPTH} operators near "
            f"{where(self.text, self.peek())}; split it up"
        )

    def operator(self) -> tuple[int, int] | None:
        """(precedence, tokens) of the binary or postfix operator at the cursor, if any."""
        token = self.peek()
        word = token.upper
        if word == "OR":
            return 1, 1
        if word == "XOR":
            return 2, 1
        if word == "AND":
            return 3, 1
        if token.kind is Kind.OP and token.value in _COMPARISON:
            return 5, 1
        if word in ("STARTS", "ENDS") and self.is_kw("WITH", 1):
            return 6, 2
        if word in ("CONTAINS", "IN") or self.is_op("=~"):
            return 6, 1
        if word == "IS":
            return 6, 0  # IS [NOT] NULL: consumed by binary()
        if token.kind is Kind.OP and token.value in ("+", "-", "||"):
            return 7, 1
        if token.kind is Kind.OP and token.value in ("*", "/", "%"):
            return 8, 1
        if self.is_op("^"):
            return 9, 1
        return None

    def binary(self, min_prec: int) -> int:
        if min_prec <= 4 and self.is_kw("NOT"):
            count = 0
            while self.accept_kw("NOT"):
                count += 1
            depth = self.binary(5) + count
        else:
            depth = self.unary()
        while (found := self.operator()) is not None and found[0] >= min_prec:
            prec, width = found
            if width == 0:
                self.expect_kw("IS")
                self.accept_kw("NOT")
                self.expect_kw("NULL")
                depth += 1
            else:
                self.pos += width
                depth = max(depth, self.binary(prec + 1)) + 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise self.too_deep()
        return depth

    def unary(self) -> int:
        count = 0
        while self.is_op("-") or self.is_op("+"):
            self.take()
            count += 1
        return self.postfix() + count

    def postfix(self) -> int:
        depth = self.atom()
        while True:
            if self.accept_op("."):
                self.name("a property name after '.'", keywords=True)
            elif self.accept_op("["):
                if not self.is_op(".."):
                    depth = max(depth, self.expression())
                if self.accept_op("..") and not self.is_op("]"):
                    depth = max(depth, self.expression())
                self.expect_op("]")
            elif self.is_op(":"):
                self.labels()
            else:
                return depth + 1
            depth += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise self.too_deep()

    def atom(self) -> int:
        token = self.peek()
        word = token.upper
        if token.kind in (Kind.NUMBER, Kind.STRING, Kind.PARAM) or word in ("TRUE", "FALSE"):
            self.take()
            return 1
        if word == "NULL":
            self.take()
            return 1
        if word == "CASE":
            return self.case()
        if word in ("EXISTS", "COUNT") and self.is_op("{", 1):
            self.take()
            self.subquery()
            return 1
        if token.kind is Kind.NAME and self.is_op("(", 1):
            return self.call_expression(token)
        if token.kind is Kind.NAME and self.is_op(".", 1) and self.dotted_function():
            return self.call_expression(token)
        if self.is_name():
            self.take()
            return 1
        if self.accept_op("("):
            depth = self.expression()
            self.expect_op(")")
            return depth + 1
        if self.is_op("["):
            return self.list_expression()
        if self.accept_op("{"):
            depth = 0
            if not self.is_op("}"):
                while True:
                    if self.peek().kind is Kind.STRING:
                        self.take()
                    else:
                        self.name("a map key", keywords=True)
                    self.expect_op(":")
                    depth = max(depth, self.expression())
                    if not self.accept_op(","):
                        break
            self.expect_op("}")
            return depth + 1
        raise self.fail("an expression")

    def dotted_function(self) -> bool:
        ahead = 0
        while self.peek(ahead).kind is Kind.NAME and self.is_op(".", ahead + 1):
            ahead += 2
        return self.peek(ahead).kind is Kind.NAME and self.is_op("(", ahead + 1)

    def subquery(self) -> None:
        self.expect_op("{")
        if self.peek().upper in CLAUSE_WORDS:
            self.query(require_return=False)
        else:
            self.patterns()
            self.where()
        self.expect_op("}")

    def case(self) -> int:
        start = self.take()
        self.case_depth += 1
        if self.case_depth > MAX_CASE_DEPTH:
            raise QueryError(
                f"CASE nested deeper than {MAX_CASE_DEPTH} levels at {where(self.text, start)}; "
                "flatten it"
            )
        depth = 0 if self.is_kw("WHEN") else self.expression()
        if not self.is_kw("WHEN"):
            raise self.fail("WHEN")
        while self.accept_kw("WHEN"):
            depth = max(depth, self.expression())
            self.expect_kw("THEN")
            depth = max(depth, self.expression())
        if self.accept_kw("ELSE"):
            depth = max(depth, self.expression())
        self.expect_kw("END")
        self.case_depth -= 1
        return depth + 1

    def call_expression(self, first: Token) -> int:
        names = [self.take().value]
        while self.accept_op("."):
            names.append(self.name("a function name", keywords=True))
        function = ".".join(names)
        word = function.upper()
        self.expect_op("(")
        if word in _QUANTIFIERS and self.is_name() and self.is_kw("IN", 1):
            self.take()
            self.take()
            depth = self.expression()
            if self.accept_kw("WHERE"):
                depth = max(depth, self.expression())
            self.expect_op(")")
            return depth + 1
        if word == "REDUCE" and self.is_name() and self.is_op("=", 1):
            self.pos += 2
            depth = self.expression()
            self.expect_op(",")
            self.name("a variable")
            self.expect_kw("IN")
            depth = max(depth, self.expression())
            self.expect_op("|")
            depth = max(depth, self.expression())
            self.expect_op(")")
            return depth + 1
        if function.lower() not in READ_FUNCTIONS:
            raise QueryError(
                f"function {function}() at {where(self.text, first)} is not on the read-only "
                "function list (graph/cypher_functions.py); table functions such as read_csv "
                "and functions of extensions are refused"
            )
        self.accept_kw("DISTINCT")
        if self.accept_op("*"):
            self.expect_op(")")
            return 1
        if word == "CAST" and not self.is_op(")"):
            depth = self.expression()
            if self.accept_kw("AS"):
                while self.peek().kind is Kind.NAME or self.is_op("[") or self.is_op("]"):
                    self.take()  # a type name: STRING, INT64[], ...
                self.expect_op(")")
                return depth + 1
            if not self.accept_op(","):
                self.expect_op(")")
                return depth + 1
        return self.arguments(")") + 1

    def arguments(self, closing: str) -> int:
        depth = 0
        if self.accept_op(closing):
            return depth
        while True:
            depth = max(depth, self.argument())
            if not self.accept_op(","):
                break
        self.expect_op(closing)
        return depth

    def argument(self) -> int:
        if self.is_name() and self.adjacent_arrow(1):
            self.pos += 3
            return self.expression() + 1
        if self.is_op("("):
            close = self.closing.get(self.pos, -1)
            ahead = close - self.pos + 1
            if close > 0 and self.adjacent_arrow(ahead):
                self.take()
                self.name("a lambda parameter")
                while self.accept_op(","):
                    self.name("a lambda parameter")
                self.expect_op(")")
                self.pos += 2
                return self.expression() + 1
        return self.expression()

    def list_expression(self) -> int:
        self.expect_op("[")
        if self.accept_op("]"):
            return 1
        if self.pattern_ahead():
            if self.is_name() and self.is_op("=", 1):
                self.pos += 2
            self.path()
            self.where()
            self.expect_op("|")
            depth = self.expression()
            self.expect_op("]")
            return depth + 1
        if self.is_name() and self.is_kw("IN", 1):
            self.pos += 2
            depth = self.expression()
            if self.accept_kw("WHERE"):
                depth = max(depth, self.expression())
            if self.accept_op("|"):
                depth = max(depth, self.expression())
            self.expect_op("]")
            return depth + 1
        depth = self.arguments("]")
        return depth + 1

    def pattern_ahead(self) -> bool:
        """Whether a ``[`` starts a pattern comprehension: ``[p = (...`` or ``[(...)-`` / ``<-``."""
        if self.is_name() and self.is_op("=", 1) and self.is_op("(", 2):
            return True
        if not self.is_op("("):
            return False
        after = self.closing.get(self.pos, -1) - self.pos + 1
        return self.is_op("-", after) or (self.is_op("<", after) and self.is_op("-", after + 1))
