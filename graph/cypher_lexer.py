"""Single-pass Cypher lexer for the read-only guard.

One left-to-right scan decides, for every character, whether it is inside a string, a backticked
name, a comment or plain code. The old guard blanked comments and strings with separate regular
expressions, so a ``/*`` inside a string hid a later clause; a single scan cannot disagree with
itself that way. The lexer is deliberately strict: only ASCII names outside quotes, only the escape
sequences LadybugDB and Neo4j both decode, and any unterminated string, comment or backticked name
is a :class:`QueryError`. It also counts the nesting of ``( [ {`` so a query nested too deeply is
refused before any recursive parsing starts.

:func:`render` writes tokens back as the text the database will run: comments become a space,
strings and backticked names are written in one canonical quoting. The database therefore never
sees a quote or comment character that the parser did not see as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from graph.errors import QueryError

MAX_NESTING = 64  # ( [ { levels; LadybugDB segfaults on a few thousand

_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_WHITESPACE = " \t\n\r\f\v"
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
# Longest first: two-character operators before their one-character prefixes.
_OPERATORS = ("<>", "<=", ">=", "=~", "..", "!=", "||")
_SINGLE = frozenset("()[]{},.:;|=<>+-*/%^$")
_OPEN = {"(": ")", "[": "]", "{": "}"}


class Kind(Enum):
    NAME = "name"  # identifier or keyword (keywords are decided by the parser)
    QUOTED = "quoted"  # `backticked name`
    STRING = "string"
    NUMBER = "number"
    PARAM = "param"  # $name or $1
    OP = "op"
    END = "end"


@dataclass(frozen=True)
class Token:
    """One token: its kind, its value (decoded for strings and names), where it starts."""

    kind: Kind
    value: str
    start: int
    stop: int
    space_before: bool = False

    @property
    def upper(self) -> str:
        return self.value.upper() if self.kind is Kind.NAME else ""

    def describe(self) -> str:
        if self.kind is Kind.END:
            return "the end of the query"
        if self.kind is Kind.STRING:
            return "a string literal"
        return repr(self.value)


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _string(text: str, index: int) -> tuple[str, int]:
    quote, chars, i = text[index], [], index + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(chars), i + 1
        if char == "\\":
            code = text[i + 1 : i + 2]
            if code in _ESCAPES:
                chars.append(_ESCAPES[code])
                i += 2
                continue
            width = {"u": 4, "U": 8}.get(code, 0)
            digits = text[i + 2 : i + 2 + width]
            if (
                width
                and len(digits) == width
                and all(c in "0123456789abcdefABCDEF" for c in digits)
            ):
                point = int(digits, 16)
                if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                    raise QueryError(f"bad \\{code} escape in a string at {_where(text, i)}")
                chars.append(chr(point))
                i += 2 + width
                continue
            raise QueryError(
                f"unsupported escape '\\{code}' in a string at {_where(text, i)}; "
                "use \\\\, \\', \\\", \\n, \\t, \\r, \\b, \\f or \\uXXXX"
            )
        chars.append(char)
        i += 1
    raise QueryError(f"unterminated string literal starting at {_where(text, index)}")


def _backticked(text: str, index: int) -> tuple[str, int]:
    chars, i = [], index + 1
    while i < len(text):
        if text[i] == "`":
            if text[i + 1 : i + 2] == "`":
                chars.append("`")
                i += 2
                continue
            if not chars:
                raise QueryError(f"empty `name` at {_where(text, index)}")
            return "".join(chars), i + 1
        chars.append(text[i])
        i += 1
    raise QueryError(f"unterminated `backticked name` starting at {_where(text, index)}")


def _number(text: str, index: int) -> int:
    i = index
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    # "1..3" is a range, not the number "1." followed by ".3"
    if text[i : i + 1] == "." and text[i + 1 : i + 2] in _DIGITS:
        i += 1
        while i < len(text) and text[i] in _DIGITS:
            i += 1
    if text[i : i + 1] in ("e", "E"):
        j = i + 1
        if text[j : j + 1] in ("+", "-"):
            j += 1
        if text[j : j + 1] in _DIGITS:
            i = j
            while i < len(text) and text[i] in _DIGITS:
                i += 1
    if i < len(text) and text[i] in _NAME_CHARS:
        raise QueryError(f"malformed number at {_where(text, index)}")
    return i


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one :attr:`Kind.END` token.

    Raises:
        QueryError: an unterminated string, comment or backticked name, an unknown character,
            unbalanced or too deeply nested brackets.
    """
    tokens: list[Token] = []
    stack: list[tuple[str, int]] = []
    i, spaced = 0, False
    while i < len(text):
        char = text[i]
        if char in _WHITESPACE:
            i, spaced = i + 1, True
            continue
        if text.startswith("//", i):
            stop = text.find("\n", i)
            i, spaced = (len(text) if stop < 0 else stop), True
            continue
        if text.startswith("/*", i):
            stop = text.find("*/", i + 2)
            if stop < 0:
                raise QueryError(f"unterminated /* comment starting at {_where(text, i)}")
            i, spaced = stop + 2, True
            continue
        start = i
        if char in ("'", '"'):
            value, i = _string(text, i)
            kind = Kind.STRING
        elif char == "`":
            value, i = _backticked(text, i)
            kind = Kind.QUOTED
        elif char in _DIGITS:
            i = _number(text, i)
            value, kind = text[start:i], Kind.NUMBER
        elif char in _NAME_START:
            while i < len(text) and text[i] in _NAME_CHARS:
                i += 1
            value, kind = text[start:i], Kind.NAME
        elif char == "$":
            i += 1
            while i < len(text) and text[i] in _NAME_CHARS:
                i += 1
            if i == start + 1:
                raise QueryError(f"'$' without a parameter name at {_where(text, start)}")
            value, kind = text[start + 1 : i], Kind.PARAM
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None and char not in _SINGLE:
                raise QueryError(f"unexpected character {char!r} at {_where(text, i)}")
            value, kind = op or char, Kind.OP
            i += len(value)
            if value in _OPEN:
                stack.append((_OPEN[value], start))
                if len(stack) > MAX_NESTING:
                    raise QueryError(
                        f"query nested deeper than {MAX_NESTING} levels of ( [ {{ at "
                        f"{_where(text, start)}; flatten it"
                    )
            elif value in (")", "]", "}"):
                if not stack or stack[-1][0] != value:
                    raise QueryError(f"unbalanced {value!r} at {_where(text, start)}")
                stack.pop()
        tokens.append(Token(kind, value, start, i, spaced))
        spaced = False
    if stack:
        raise QueryError(f"unclosed bracket opened at {_where(text, stack[-1][1])}")
    tokens.append(Token(Kind.END, "", len(text), len(text), spaced))
    return tokens


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(tokens: list[Token], text: str) -> str:
    """The query as the database should run it: tokens in order, comments gone, quoting canonical.

    Whitespace between tokens is kept as one space (newlines as a newline) so error positions stay
    readable; adjacent tokens stay adjacent, so ``->`` or ``1..3`` keep their meaning.
    """
    parts: list[str] = []
    for index, token in enumerate(tokens):
        if token.kind is Kind.END:
            break
        if index and token.space_before:
            gap = text[tokens[index - 1].stop : token.start]
            parts.append("\n" if "\n" in gap else " ")
        if token.kind is Kind.STRING:
            parts.append(_quote_string(token.value))
        elif token.kind is Kind.QUOTED:
            parts.append("`" + token.value.replace("`", "``") + "`")
        elif token.kind is Kind.PARAM:
            parts.append("$" + token.value)
        else:
            parts.append(token.value)
    return "".join(parts)


def where(text: str, token: Token) -> str:
    """``line L, column C`` of a token, for error messages."""
    return _where(text, token.start)
