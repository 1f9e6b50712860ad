"""Token cursor shared by the read-only Cypher parser's statement and expression rules.

It also holds the keyword tables: the clauses outside the grammar (with why each is refused, so a
refusal names what to do) and the words that cannot be variable names.
"""

from __future__ import annotations

from graph.cypher_lexer import Kind, Token, where
from graph.errors import QueryError

_WRITES = "it writes to the graph"
# Clauses and commands outside the grammar, with why they are refused.
REFUSED = {
    **dict.fromkeys(
        ("CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "FOREACH", "FINISH"), _WRITES
    ),
    **dict.fromkeys(("DROP", "ALTER", "RENAME", "CHECKPOINT"), "it changes the database schema"),
    **dict.fromkeys(("COPY", "LOAD", "EXPORT", "IMPORT"), "it reads or writes files"),
    **dict.fromkeys(("INSTALL", "UNINSTALL", "EXTENSION"), "it installs or loads an extension"),
    **dict.fromkeys(("ATTACH", "USE"), "it opens another database"),
    **dict.fromkeys(("BEGIN", "COMMIT", "ROLLBACK"), "it controls transactions"),
    **dict.fromkeys(
        ("GRANT", "REVOKE", "DENY", "SHOW", "START", "STOP", "TERMINATE", "PROFILE", "EXPLAIN"),
        "it administers the server",
    ),
}
CLAUSE_WORDS = {"MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL", "UNION", "WHERE"}
RESERVED = (
    frozenset(REFUSED)
    | CLAUSE_WORDS
    | {
        *("AND", "OR", "XOR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN"),
        *("ELSE", "END", "STARTS", "ENDS", "CONTAINS", "AS", "DISTINCT", "ORDER", "BY", "SKIP"),
        *("LIMIT", "ASC", "DESC", "ASCENDING", "DESCENDING", "YIELD", "ALL"),
    }
)
HINT = (
    "only MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION and "
    "CALL of read-only procedures are accepted (docs/cypher.md)"
)


class TokenCursor:
    """A position in a token list, with the look-ahead and error helpers the grammar rules use."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text, self.tokens, self.pos = text, tokens, 0
        self.case_depth = 0
        self.closing: dict[int, int] = {}
        stack: list[int] = []
        for index, token in enumerate(tokens):
            if token.kind is Kind.OP and token.value in "([{":
                stack.append(index)
            elif token.kind is Kind.OP and token.value in ")]}":
                self.closing[stack.pop()] = index

    # ------------------------------------------------------------------ tokens
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def is_kw(self, word: str, ahead: int = 0) -> bool:
        return self.peek(ahead).upper == word

    def is_op(self, op: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind is Kind.OP and token.value == op

    def accept_kw(self, *words: str) -> bool:
        if not all(self.is_kw(word, n) for n, word in enumerate(words)):
            return False
        self.pos += len(words)
        return True

    def accept_op(self, op: str) -> bool:
        if self.is_op(op):
            self.take()
            return True
        return False

    def fail(self, expected: str, token: Token | None = None) -> QueryError:
        token = token or self.peek()
        if token.upper in REFUSED:
            reason = REFUSED[token.upper]
            kind = "writing clause" if reason == _WRITES else "clause"
            return QueryError(
                f"{kind} {token.upper} is not allowed on the read-only query path: {reason} "
                f"({where(self.text, token)}); use the kgdx API or CLI to change the graph"
            )
        return QueryError(
            f"not read-only Cypher: expected {expected} at {where(self.text, token)}, found "
            f"{token.describe()}; {HINT}"
        )

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            raise self.fail(word)

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.fail(repr(op))

    def name(self, what: str = "a name", *, keywords: bool = False) -> str:
        token = self.peek()
        if token.kind is Kind.QUOTED or (
            token.kind is Kind.NAME and (keywords or token.upper not in RESERVED)
        ):
            self.take()
            return token.value
        raise self.fail(what)

    def is_name(self, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind is Kind.QUOTED or (
            token.kind is Kind.NAME and token.upper not in RESERVED
        )

    def adjacent_arrow(self, ahead: int) -> bool:
        """``->`` written as one symbol (a lambda), not ``-`` and ``>`` apart."""
        return (
            self.is_op("-", ahead)
            and self.is_op(">", ahead + 1)
            and not self.peek(ahead + 1).space_before
        )
