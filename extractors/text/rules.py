"""Radiology assertion rules for medspaCy, read from a data file and validated.

The rules live in ``data/nlp/assertion_rules.tsv`` (format and rationale: ``docs/extraction.md``):
ConText triggers (negation, uncertainty and requests, hypotheticals, history, family, resolved
findings, normal statements), pseudo-triggers, terminators, section headers with the assertion
each section implies, and the subjects of normal statements ("heart size", "lungs") with the
concept a normal statement about them makes absent. :func:`load_assertion_rules` reads and checks
the file; a bad line raises :class:`~graph.errors.ConfigError` naming ``file:line``.

medspaCy's default ConText rules come from clinical notes (VA); radiology reports phrase
negation and uncertainty their own way ("no evidence of", "is not identified", "cannot be
excluded", "evaluate for", "clinical correlation for"), and say "no change in X" when X is
present. The shipped file is the whole rule set (the medspaCy defaults that suit radiology are
copied into it, and marked so); ``context_rules(radiology=False)`` gives medspaCy's defaults
alone, as a baseline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import ConfigError
from graph.settings import DATA_DIR

if TYPE_CHECKING:
    from spacy.language import Language

ASSERTION_RULES = DATA_DIR / "nlp" / "assertion_rules.tsv"
COLUMNS = ("kind", "literal", "category", "direction", "max_scope", "pattern", "notes")
KINDS = ("trigger", "pseudo", "terminate", "section", "section_assertion", "normal_subject")

# Categories beyond medspaCy's five; RESOLVED marks a finding that was there and is gone,
# NORMAL a normal statement ("heart size is normal") about a normal_subject.
RESOLVED = "RESOLVED"
NORMAL = "NORMAL"
PSEUDO = "PSEUDO"
TRIGGER_CATEGORIES = (
    "NEGATED_EXISTENCE",
    "POSSIBLE_EXISTENCE",
    "HISTORICAL",
    "HYPOTHETICAL",
    "FAMILY",
    RESOLVED,
    NORMAL,
)
TRIGGER_DIRECTIONS = ("FORWARD", "BACKWARD", "BIDIRECTIONAL")
SECTION_EFFECTS = ("HISTORICAL", "FAMILY")

# What each ConText category sets on a target span (medspaCy's defaults plus RESOLVED).
CONTEXT_SPAN_ATTRS: dict[str, dict[str, bool]] = {
    "NEGATED_EXISTENCE": {"is_negated": True},
    "POSSIBLE_EXISTENCE": {"is_uncertain": True},
    "HISTORICAL": {"is_historical": True},
    "HYPOTHETICAL": {"is_hypothetical": True},
    "FAMILY": {"is_family": True},
    RESOLVED: {"is_negated": True, "is_historical": True},
}
NORMAL_SPAN_ATTRS: dict[str, dict[str, bool]] = {NORMAL: {"is_normal": True}}

# Token attributes and operators a rule's pattern may use (a subset of spaCy's Matcher).
_PATTERN_KEYS = frozenset(
    """ORTH TEXT LOWER NORM LENGTH SHAPE PREFIX SUFFIX IS_ALPHA IS_ASCII IS_DIGIT IS_LOWER
    IS_UPPER IS_TITLE IS_PUNCT IS_SPACE IS_STOP IS_SENT_START LIKE_NUM OP""".split()
)
_PATTERN_PREDICATES = frozenset({"IN", "NOT_IN", "REGEX", "==", "!=", ">=", "<=", ">", "<"})
_OPERATORS = frozenset({"?", "*", "+", "!"})
_SECTION_NAME = re.compile(r"^[a-z][a-z_]*$")


@dataclass(frozen=True)
class AssertionRule:
    """One line of the rule file (see :data:`COLUMNS`); ``source`` is ``file:line``."""

    kind: str
    literal: str
    category: str
    direction: str = ""
    max_scope: int | None = None
    pattern: tuple[dict[str, Any], ...] | None = None
    notes: str = ""
    source: str = ""

    @property
    def concept_ids(self) -> tuple[str, ...]:
        """The concepts a normal statement about this subject makes absent."""
        return tuple(self.category.split("|")) if self.kind == "normal_subject" else ()


@dataclass(frozen=True)
class AssertionRuleSet:
    """The validated rules of one file, with the views the pipeline needs."""

    rules: tuple[AssertionRule, ...]
    path: Path
    _by_kind: dict[str, tuple[AssertionRule, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped = {kind: tuple(r for r in self.rules if r.kind == kind) for kind in KINDS}
        object.__setattr__(self, "_by_kind", grouped)

    def of_kind(self, kind: str) -> tuple[AssertionRule, ...]:
        """The rules of one kind, in file order."""
        return self._by_kind[kind]

    @property
    def section_headers(self) -> dict[str, tuple[str, ...]]:
        """Section name -> its header phrases."""
        headers: dict[str, list[str]] = {}
        for rule in self.of_kind("section"):
            headers.setdefault(rule.category, []).append(rule.literal)
        return {name: tuple(phrases) for name, phrases in headers.items()}

    @property
    def section_assertions(self) -> dict[str, str]:
        """Section name -> ``HISTORICAL`` or ``FAMILY`` for sections that imply one."""
        return {rule.literal: rule.category for rule in self.of_kind("section_assertion")}

    @property
    def normal_subjects(self) -> tuple[AssertionRule, ...]:
        return self.of_kind("normal_subject")

    def context_rules(self, nlp: Language | None = None, *, normal: bool = False) -> list:
        """medspaCy ``ConTextRule``s: the assertion triggers, or (``normal``) the normal-statement
        ones; both with the terminators that end every scope.

        Args:
            nlp: when given, literals become token patterns made by its tokenizer (medspaCy would
                run the whole pipeline over every literal instead).
            normal: the NORMAL rules for :mod:`extractors.text.normal` instead of the others.
        """
        from medspacy.context import ConTextRule

        def wanted(rule: AssertionRule) -> bool:
            return (rule.category == NORMAL) == normal or rule.category == "ALL"

        scoped_ends: dict[str, set[str]] = {}
        for rule in self.of_kind("terminate"):
            if rule.category != "ALL":
                scoped_ends.setdefault(rule.category, set()).add(f"END_{rule.category}")
        rules = []
        for rule in self.rules:
            if rule.kind not in ("trigger", "pseudo", "terminate") or not wanted(rule):
                continue
            if rule.kind == "trigger":
                category, direction = rule.category, rule.direction
            elif rule.kind == "pseudo":
                category, direction = PSEUDO, "PSEUDO"
            elif rule.category == "ALL":
                category, direction = "TERMINATE", "TERMINATE"
            else:  # ends one category's scope only: see the terminated_by of its triggers
                category, direction = f"END_{rule.category}", "PSEUDO"
            pattern = list(rule.pattern) if rule.pattern else _literal_pattern(nlp, rule.literal)
            rules.extend(
                ConTextRule(
                    literal=rule.literal,
                    category=category,
                    direction=direction,
                    pattern=variant,
                    # A terminator's own scope is one token each side: medspaCy only lets it end
                    # a scope that overlaps its own by its test, which misses a trigger's
                    # max_scope-limited scope lying inside the terminator's whole sentence.
                    max_scope=rule.max_scope if rule.kind == "trigger" else 1,
                    terminated_by=scoped_ends.get(category) if rule.kind == "trigger" else None,
                    metadata={"source": rule.source},
                )
                for variant in expand_first_token(pattern)
            )
        return rules

    def section_rules(self) -> list:
        """medspaCy ``SectionRule``s for the headers (``HEADER:`` at any case)."""
        from medspacy.section_detection import SectionRule

        rules = []
        for rule in self.of_kind("section"):
            pattern = [{"LOWER": word} for word in rule.literal.split()] + [{"ORTH": ":"}]
            rules.append(
                SectionRule(literal=f"{rule.literal}:", category=rule.category, pattern=pattern)
            )
        return rules


def expand_first_token(pattern: list[dict[str, Any]] | None) -> list[list[dict[str, Any]] | None]:
    """One pattern per word of a leading ``{"LOWER": {"IN": [...]}}`` (and one without it when
    it is optional): the same matches, but spaCy's Matcher tests a plain ``LOWER`` in C where a
    set predicate runs in Python at every token of every report (most of ConText's time)."""
    if not pattern:
        return [pattern]
    first, rest = pattern[0], pattern[1:]
    words = first.get("LOWER", {}).get("IN") if isinstance(first.get("LOWER"), dict) else None
    if not words or set(first) - {"LOWER", "OP"} or first.get("OP") not in (None, "?"):
        return [pattern]
    variants: list[list[dict[str, Any]] | None] = [[{"LOWER": word}, *rest] for word in words]
    if first.get("OP") == "?" and rest and any(t.get("OP") not in ("?", "*") for t in rest):
        variants.extend(expand_first_token(rest))
    return variants


def _literal_pattern(nlp: Language | None, literal: str) -> list[dict[str, str]] | None:
    if nlp is None:
        return None
    return [{"LOWER": token.lower_} for token in nlp.tokenizer(literal.lower())]


# ---------------------------------------------------------------------- reading and checking
def load_assertion_rules(path: str | Path | None = None) -> AssertionRuleSet:
    """Read and validate an assertion rule file (the shipped one by default; cached per path).

    Raises:
        ConfigError: the file is missing, or a line is malformed (the message names file:line).
    """
    return _load(Path(path).resolve() if path is not None else ASSERTION_RULES)


@lru_cache(maxsize=8)
def _load(path: Path) -> AssertionRuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"assertion rule file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the assertion rule file {path}: {exc}") from None
    rules: list[AssertionRule] = []
    header_seen = False
    seen: dict[tuple[str, str, str], str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        cells = line.split("\t")
        if not header_seen:
            if tuple(cell.strip() for cell in cells) != COLUMNS:
                raise ConfigError(
                    f"{where}: the first line must be the header {'<TAB>'.join(COLUMNS)}"
                )
            header_seen = True
            continue
        rule = _parse_line(cells, where)
        key = (rule.kind, rule.literal, rule.category)
        if key in seen:
            raise ConfigError(f"{where}: duplicate {rule.kind} {rule.literal!r} (see {seen[key]})")
        seen[key] = where
        rules.append(rule)
    if not header_seen:
        raise ConfigError(f"{path}: no header line; expected {'<TAB>'.join(COLUMNS)}")
    _check_sections(rules)
    return AssertionRuleSet(rules=tuple(rules), path=path)


def _parse_line(cells: list[str], where: str) -> AssertionRule:
    if len(cells) > len(COLUMNS):
        raise ConfigError(
            f"{where}: {len(cells)} tab-separated cells, expected at most {len(COLUMNS)} "
            f"({', '.join(COLUMNS)})"
        )
    kind, literal, category, direction, max_scope, pattern, notes = (
        cell.strip() for cell in cells + [""] * (len(COLUMNS) - len(cells))
    )
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not literal:
        raise ConfigError(f"{where}: empty literal")
    direction = direction.upper()
    if kind == "trigger":
        _expect(category, TRIGGER_CATEGORIES, "category", where)
        _expect(direction, TRIGGER_DIRECTIONS, "direction", where)
    elif kind == "pseudo":
        _expect(category, (*TRIGGER_CATEGORIES, PSEUDO), "category", where)
        _expect(direction, ("", "PSEUDO"), "direction", where)
    elif kind == "terminate":
        _expect(category, ("ALL", *TRIGGER_CATEGORIES), "category", where)
        _expect(direction, ("", "TERMINATE"), "direction", where)
    else:
        if direction or max_scope or (pattern and kind != "normal_subject"):
            raise ConfigError(f"{where}: a {kind} row takes no direction, max_scope or pattern")
        if kind == "section" and not _SECTION_NAME.match(category):
            raise ConfigError(f"{where}: section name {category!r} must be lower_case words")
        if kind == "section_assertion":
            _expect(category, SECTION_EFFECTS, "category", where)
        if kind == "normal_subject":
            _check_concepts(category, where)
    if max_scope and kind != "trigger":
        raise ConfigError(f"{where}: max_scope is for trigger rows only")
    return AssertionRule(
        kind=kind,
        literal=literal,
        category=category,
        direction=direction,
        max_scope=_max_scope(max_scope, where),
        pattern=_pattern(pattern, where),
        notes=notes,
        source=where,
    )


def _expect(value: str, allowed: tuple[str, ...], column: str, where: str) -> None:
    if value not in allowed:
        shown = ", ".join(a or "(empty)" for a in allowed)
        raise ConfigError(f"{where}: {column} {value!r} is not one of {shown}")


def _max_scope(value: str, where: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{where}: max_scope {value!r} must be a positive whole number of tokens")
    return int(value)


def _pattern(value: str, where: str) -> tuple[dict[str, Any], ...] | None:
    if not value:
        return None
    try:
        tokens = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: pattern is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, dict) for t in tokens):
        raise ConfigError(f"{where}: pattern must be a JSON list of token objects")
    for token in tokens:
        for key, spec in token.items():
            if key not in _PATTERN_KEYS:
                raise ConfigError(f"{where}: pattern uses unknown token attribute {key!r}")
            if key == "OP":
                if spec not in _OPERATORS:
                    raise ConfigError(f"{where}: pattern operator {spec!r} is not one of ? * + !")
            elif isinstance(spec, dict):
                _check_predicates(spec, where)
            elif not isinstance(spec, str | bool | int):
                raise ConfigError(f"{where}: pattern value of {key} must be text, a flag or {{}}")
    if all(token.get("OP") in ("?", "*") for token in tokens):
        raise ConfigError(f"{where}: pattern matches the empty string (every token is optional)")
    return tuple(tokens)


def _check_predicates(spec: dict[str, Any], where: str) -> None:
    for predicate, argument in spec.items():
        if predicate not in _PATTERN_PREDICATES:
            raise ConfigError(f"{where}: pattern predicate {predicate!r} is not supported")
        if predicate in ("IN", "NOT_IN") and (
            not isinstance(argument, list) or not all(isinstance(a, str) for a in argument)
        ):
            raise ConfigError(f"{where}: pattern {predicate} takes a list of strings")
        if predicate == "REGEX":
            try:
                re.compile(argument)
            except (re.error, TypeError) as exc:
                raise ConfigError(
                    f"{where}: pattern REGEX {argument!r} is invalid: {exc}"
                ) from None


def _check_concepts(value: str, where: str) -> None:
    from graph.records import check_curie

    for concept_id in value.split("|"):
        try:
            check_curie(concept_id)
        except ValueError as exc:
            raise ConfigError(f"{where}: normal_subject concept {concept_id!r}: {exc}") from None


def _check_sections(rules: list[AssertionRule]) -> None:
    sections = {rule.category for rule in rules if rule.kind == "section"}
    for rule in rules:
        if rule.kind == "section_assertion" and rule.literal not in sections:
            raise ConfigError(
                f"{rule.source}: section_assertion for {rule.literal!r}, which no section row "
                "declares"
            )


# ---------------------------------------------------------------------- pipeline helpers
def section_rules(path: str | Path | None = None) -> list:
    """medspaCy ``SectionRule``s for the radiology headers of the rule file."""
    return load_assertion_rules(path).section_rules()


def context_rules(
    nlp: Language | None = None, *, radiology: bool = True, path: str | Path | None = None
) -> list:
    """The ConText rules of the rule file, or medspaCy's defaults alone (``radiology=False``)."""
    if radiology:
        return load_assertion_rules(path).context_rules(nlp)
    import medspacy
    from medspacy.context import ConTextRule

    default = (
        Path(medspacy.__file__).resolve().parents[1] / "resources" / "en" / "context_rules.json"
    )
    return ConTextRule.from_json(str(default))
