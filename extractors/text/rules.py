"""Radiology rules for medspaCy: section headers and ConText modifiers the defaults miss.

medspaCy's default ConText rules come from clinical notes (VA); radiology reports phrase
negation and uncertainty their own way ("no evidence of", "is not identified", "cannot be
excluded", "may represent"), and say "no change in X" when X is present. The rules below are
general radiology phrasing, added on top of the defaults.
"""

from __future__ import annotations

# Sections of a radiology report; medspaCy's defaults are for clinical notes and have no
# "findings" / "impression" / "comparison" headers.
SECTION_HEADERS: dict[str, tuple[str, ...]] = {
    "indication": (
        "indication",
        "indications",
        "reason for exam",
        "reason for examination",
        "reason for study",
        "clinical indication",
        "clinical information",
    ),
    "history": ("history", "clinical history", "past medical history", "medical history"),
    "family_history": ("family history",),
    "comparison": ("comparison", "comparisons", "prior studies", "prior study"),
    "technique": ("technique", "procedure", "examination", "exam"),
    "findings": ("findings", "finding", "report", "description"),
    "impression": ("impression", "impressions", "conclusion", "conclusions", "summary", "opinion"),
}

# Categories beyond medspaCy's five; RESOLVED marks a finding that was there and is gone.
RESOLVED = "RESOLVED"
PSEUDO = "PSEUDO"

# (literal, category, direction). Directions: FORWARD (scope after the trigger), BACKWARD
# (before), BIDIRECTIONAL, TERMINATE (ends another trigger's scope), PSEUDO (looks like a
# trigger but is not one; being longer, it prunes the shorter trigger it contains).
RADIOLOGY_RULES: tuple[tuple[str, str, str], ...] = (
    # negation
    ("no evidence of", "NEGATED_EXISTENCE", "FORWARD"),
    ("no radiographic evidence of", "NEGATED_EXISTENCE", "FORWARD"),
    ("no findings of", "NEGATED_EXISTENCE", "FORWARD"),
    ("no signs of", "NEGATED_EXISTENCE", "FORWARD"),
    ("without evidence of", "NEGATED_EXISTENCE", "FORWARD"),
    ("is negative for", "NEGATED_EXISTENCE", "FORWARD"),
    ("are negative for", "NEGATED_EXISTENCE", "FORWARD"),
    ("negative for", "NEGATED_EXISTENCE", "FORWARD"),
    ("no definite", "NEGATED_EXISTENCE", "FORWARD"),
    ("no visible", "NEGATED_EXISTENCE", "FORWARD"),
    ("no new", "NEGATED_EXISTENCE", "FORWARD"),
    ("none", "NEGATED_EXISTENCE", "BACKWARD"),
    ("is absent", "NEGATED_EXISTENCE", "BACKWARD"),
    ("are absent", "NEGATED_EXISTENCE", "BACKWARD"),
    ("has been excluded", "NEGATED_EXISTENCE", "BACKWARD"),
    ("clear of", "NEGATED_EXISTENCE", "FORWARD"),
    ("free of", "NEGATED_EXISTENCE", "FORWARD"),
    ("resolution of", RESOLVED, "FORWARD"),
    ("resolved", RESOLVED, "BIDIRECTIONAL"),
    ("has resolved", RESOLVED, "BACKWARD"),
    ("now resolved", RESOLVED, "BACKWARD"),
    ("have resolved", RESOLVED, "BACKWARD"),
    ("interval resolution of", RESOLVED, "FORWARD"),
    ("no longer seen", RESOLVED, "BACKWARD"),
    ("no longer visualized", RESOLVED, "BACKWARD"),
    ("no longer present", RESOLVED, "BACKWARD"),
    # "no change in the small left effusion": the effusion is there
    ("no change", PSEUDO, "PSEUDO"),
    ("no interval change", PSEUDO, "PSEUDO"),
    ("no significant change", PSEUDO, "PSEUDO"),
    ("no significant interval change", PSEUDO, "PSEUDO"),
    ("no appreciable change", PSEUDO, "PSEUDO"),
    ("without change", PSEUDO, "PSEUDO"),
    ("without interval change", PSEUDO, "PSEUDO"),
    ("not changed", PSEUDO, "PSEUDO"),
    ("not significantly changed", PSEUDO, "PSEUDO"),
    ("no increase", PSEUDO, "PSEUDO"),
    ("no decrease", PSEUDO, "PSEUDO"),
    ("not only", PSEUDO, "PSEUDO"),
    ("no doubt", PSEUDO, "PSEUDO"),
    # uncertainty
    ("cannot be excluded", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("can not be excluded", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("could not be excluded", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("not excluded", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("cannot be ruled out", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("not be ruled out", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("cannot exclude", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("can not exclude", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("cannot rule out", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("not excluding", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("may represent", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("could represent", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("might represent", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("may reflect", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("may be due to", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("possibly", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("questionable", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("question of", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("suspected", "POSSIBLE_EXISTENCE", "BIDIRECTIONAL"),
    ("suspicion of", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("concerning for", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("concern for", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("differential diagnosis", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("equivocal", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("may be", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("may", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("might", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("could", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("is also possible", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("are also possible", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("is possible", "POSSIBLE_EXISTENCE", "BACKWARD"),
    ("differential considerations", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("considerations include", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("consider", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("exclude", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("less likely", "POSSIBLE_EXISTENCE", "BIDIRECTIONAL"),
    ("not likely", "NEGATED_EXISTENCE", "BIDIRECTIONAL"),
    # history and family
    ("history of", "HISTORICAL", "FORWARD"),
    ("previous", "HISTORICAL", "FORWARD"),
    ("status post", "HISTORICAL", "FORWARD"),
    ("s/p", "HISTORICAL", "FORWARD"),
    ("healed", "HISTORICAL", "FORWARD"),
    ("old", "HISTORICAL", "FORWARD"),
    ("remote", "HISTORICAL", "FORWARD"),
    ("family history of", "FAMILY", "FORWARD"),
    ("mother", "FAMILY", "FORWARD"),
    ("father", "FAMILY", "FORWARD"),
    ("brother", "FAMILY", "FORWARD"),
    ("sister", "FAMILY", "FORWARD"),
    ("grandmother", "FAMILY", "FORWARD"),
    ("grandfather", "FAMILY", "FORWARD"),
    # scope ends: a new clause with its own subject
    ("however", "NEGATED_EXISTENCE", "TERMINATE"),
    ("although", "NEGATED_EXISTENCE", "TERMINATE"),
    ("though", "NEGATED_EXISTENCE", "TERMINATE"),
    ("which", "NEGATED_EXISTENCE", "TERMINATE"),
    ("there is", "NEGATED_EXISTENCE", "TERMINATE"),
    ("there are", "NEGATED_EXISTENCE", "TERMINATE"),
    ("except", "NEGATED_EXISTENCE", "TERMINATE"),
    ("other than", "NEGATED_EXISTENCE", "TERMINATE"),
    ("with the exception of", "NEGATED_EXISTENCE", "TERMINATE"),
    ("consistent with", "POSSIBLE_EXISTENCE", "TERMINATE"),
    ("compatible with", "POSSIBLE_EXISTENCE", "TERMINATE"),
)

# High-likelihood hedges ("likely", "probable", "suggestive of", "consistent with", "X versus Y")
# leave a finding asserted: radiologists use them for findings they judge more likely than not
# (Panicek & Hricak, "How sure are you, doctor?", AJR 2016, ~70-90% for these phrases), while
# "may", "could", "possible", "cannot exclude" convey ~50% or less and make it POSSIBLE.

# What each ConText category sets on a target span (medspaCy's defaults plus RESOLVED).
CONTEXT_SPAN_ATTRS: dict[str, dict[str, bool]] = {
    "NEGATED_EXISTENCE": {"is_negated": True},
    "POSSIBLE_EXISTENCE": {"is_uncertain": True},
    "HISTORICAL": {"is_historical": True},
    "HYPOTHETICAL": {"is_hypothetical": True},
    "FAMILY": {"is_family": True},
    RESOLVED: {"is_negated": True, "is_historical": True},
}


def section_rules() -> list:
    """medspaCy ``SectionRule``s for the radiology headers (``HEADER:`` at any case)."""
    from medspacy.section_detection import SectionRule

    rules = []
    for category, headers in SECTION_HEADERS.items():
        for header in headers:
            words = header.split()
            pattern = [{"LOWER": word} for word in words] + [{"ORTH": ":"}]
            rules.append(SectionRule(literal=f"{header}:", category=category, pattern=pattern))
    return rules


# Default rules that misfire on report layout: ": no" / ": none" are meant for "Fever: no", but
# in "FINDINGS: No effusion" they swallow the forward "no" and negate nothing.
# "resolved" / "now resolved" are replaced by RESOLVED rules (negated and historical).
# "suggestive of" is a high-likelihood hedge (see above), not a possible one.
DROPPED_DEFAULTS = frozenset({": no", ": none", "resolved", "now resolved", "suggestive of"})


# "X is not seen": negation after the finding. One pattern covers the copula ("is", "are", ...,
# which a default rule would otherwise grab as a forward "is not") and the verbs.
NOT_SEEN_VERBS = (
    "seen",
    "identified",
    "visualized",
    "visualised",
    "demonstrated",
    "present",
    "evident",
    "appreciated",
    "detected",
    "noted",
    "apparent",
    "visible",
)
NOT_SEEN_PATTERN = [
    {"LOWER": {"IN": ["is", "are", "was", "were", "be", "been"]}, "OP": "?"},
    {"LOWER": {"IN": ["now", "currently", "clearly", "definitely", "longer"]}, "OP": "?"},
    {"LOWER": "not"},
    {"LOWER": {"IN": ["clearly", "definitely", "well", "currently", "convincingly"]}, "OP": "?"},
    {"LOWER": {"IN": list(NOT_SEEN_VERBS)}},
]


def context_rules(*, radiology: bool = True) -> list:
    """medspaCy's default ``ConTextRule``s (minus :data:`DROPPED_DEFAULTS`), plus the radiology
    rules when ``radiology`` is set."""
    from pathlib import Path

    import medspacy
    from medspacy.context import ConTextRule

    path = Path(medspacy.__file__).resolve().parents[1] / "resources" / "en" / "context_rules.json"
    rules = [
        rule for rule in ConTextRule.from_json(str(path)) if rule.literal not in DROPPED_DEFAULTS
    ]
    if radiology:
        rules.extend(
            ConTextRule(literal=literal, category=category, direction=direction)
            for literal, category, direction in RADIOLOGY_RULES
        )
        rules.append(
            ConTextRule(
                literal="is not seen",
                category="NEGATED_EXISTENCE",
                direction="BACKWARD",
                pattern=NOT_SEEN_PATTERN,
            )
        )
    return rules
