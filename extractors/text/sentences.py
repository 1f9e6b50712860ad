"""Rule-based sentence splitter for radiology reports (a fast alternative to PyRuSH).

Report sentences end at a period, question or exclamation mark, or semicolon before a new
capitalised word or number, at line breaks, before a numbered item ("2. Stable ..."), and around
section headers ("IMPRESSION:"). Periods of abbreviations ("vs.", "Dr.", "approx.") and inside
numbers ("1.5 cm") do not end a sentence. medspaCy's PyRuSH applies similar rules through a
pure-Python rule engine at about 7 ms per report, several times the rest of the pipeline.
"""

from spacy.language import Language
from spacy.tokens import Doc

_ENDINGS = frozenset({".", "?", "!", ";"})
_ABBREVIATIONS = frozenset(
    """
    vs v dr mr mrs ms approx e.g i.e eg ie cf no nos fig st jr sr al etc incl
    """.split()
)


@Language.component("kgdx_sentences")
def split_sentences(doc: Doc) -> Doc:
    """Set ``Token.is_sent_start`` for every token of ``doc``."""
    if not len(doc):
        return doc
    starts = [False] * len(doc)
    starts[0] = True
    previous_i = 0
    for i in range(1, len(doc)):
        token = doc[i]
        if token.is_space:
            continue
        previous = doc[previous_i]
        newline = any("\n" in doc[j].text_with_ws for j in range(previous_i, i))
        if newline:
            starts[i] = True
        elif _is_ending(previous.text) and _opens_sentence(token.text):
            starts[i] = not _is_item_number(doc, previous_i, starts) and (
                previous.text != "." or not _is_abbreviation(doc, previous_i)
            )
        elif token.text[:1].isupper() and _is_header(doc, i):
            starts[i] = True
        if starts[i] and token.text[:1].isupper():
            colon = _header_colon(doc, i)
            if colon is not None and colon + 1 < len(doc):
                starts[colon + 1] = True  # the header is a sentence of its own
        previous_i = i
    for token, is_start in zip(doc, starts, strict=True):
        token.is_sent_start = is_start
    return doc


def _is_ending(text: str) -> bool:
    """A sentence-ending token: ".", "?", "!", ";" or a run of them ("..", "?!", "...")."""
    return text in _ENDINGS or (len(text) > 1 and set(text) <= _RUN_CHARS)


_RUN_CHARS = frozenset(".?!")


def _opens_sentence(text: str) -> bool:
    """A new sentence starts with a capital, a digit, a bracket or a de-id token."""
    first = text[:1]
    return first.isupper() or first.isdigit() or first in "([\"'" or text == "XXXX"


def _is_item_number(doc: Doc, period: int, starts: list[bool]) -> bool:
    """The period at ``period`` closes a list number ("2." in "2. Stable effusion")."""
    if period < 1 or not doc[period - 1].like_num or len(doc[period - 1].text) > 2:
        return False
    number = period - 1
    return number == 0 or starts[number] or doc[number - 1].text in _ENDINGS | {":"}


def _is_abbreviation(doc: Doc, period: int) -> bool:
    """The period at ``period`` closes an abbreviation ("vs.", "Dr."), not a sentence."""
    if period == 0:
        return False
    word = doc[period - 1]
    return word.whitespace_ == "" and word.lower_.rstrip(".") in _ABBREVIATIONS


def _header_colon(doc: Doc, i: int) -> int | None:
    """Index of the colon when ``doc[i]`` starts an upper-case header ("FINDINGS:")."""
    for j in range(i, min(i + 5, len(doc))):
        token = doc[j]
        if token.text == ":":
            return j if j > i else None
        if not token.is_upper or not token.is_alpha:
            return None
    return None


def _is_header(doc: Doc, i: int) -> bool:
    """``doc[i]`` starts an upper-case header ending in a colon."""
    return _header_colon(doc, i) is not None
