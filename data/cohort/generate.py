"""Generate the synthetic demo cohort ``chest_demo_cohort.jsonl`` (seeded, reproducible).

Run ``python -m data.cohort.generate`` to rewrite the file. Each patient gets a known diagnosis
label (one, sometimes two), a short chest radiograph report (indication / comparison / findings /
impression) and the gold annotation of every concept mention the generator wrote (concept id,
character span, polarity / certainty / temporality). Findings are drawn per diagnosis from
textbook-typical probabilities that overlap between diagnoses; reports also carry negated
findings, uncertain and historical mentions, incidental distractors, and label noise (a share of
patients present atypically, with findings drawn from another diagnosis). See README.md.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from data.cohort.phrases import (
    HISTORICAL_TEMPLATES,
    INCIDENTAL,
    NEGATABLE_TERM,
    NEGATION_TEMPLATES,
    PRESENT,
    UNCERTAIN_TEMPLATES,
)

COHORT_PATH = Path(__file__).with_name("chest_demo_cohort.jsonl")
SEED = 20261122
PATIENTS_PER_DIAGNOSIS = 8
ATYPICAL_RATE = 0.08  # label noise: findings drawn from another diagnosis
IMPRESSION_NAMES_DIAGNOSIS = 0.15  # share of impressions that name the diagnosis (uncertainly)

# diagnosis -> (finding probabilities, symptom probabilities)
PROFILES: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "congestive heart failure": (
        {
            "cardiomegaly": 0.85,
            "pulmonary edema": 0.55,
            "pleural effusion": 0.55,
            "pulmonary vascular congestion": 0.6,
            "cephalization": 0.3,
            "kerley b lines": 0.25,
            "increased interstitial markings": 0.2,
        },
        {"dyspnea": 0.8, "orthopnea": 0.4, "leg edema": 0.5, "fatigue": 0.3, "crackles": 0.3},
    ),
    "pneumonia": (
        {
            "consolidation": 0.75,
            "air bronchogram": 0.35,
            "pulmonary opacity": 0.4,
            "pulmonary infiltrate": 0.3,
            "pleural effusion": 0.25,
            "atelectasis": 0.15,
        },
        {
            "cough": 0.6,
            "productive cough": 0.4,
            "fever": 0.7,
            "chills": 0.3,
            "pleuritic chest pain": 0.2,
            "dyspnea": 0.3,
        },
    ),
    "COVID-19": (
        {
            "ground-glass opacity": 0.75,
            "pulmonary opacity": 0.5,
            "consolidation": 0.3,
            "increased interstitial markings": 0.15,
        },
        {
            "fever": 0.7,
            "cough": 0.6,
            "dyspnea": 0.5,
            "anosmia": 0.3,
            "hypoxemia": 0.4,
            "fatigue": 0.3,
        },
    ),
    "pulmonary tuberculosis": (
        {
            "pulmonary cavity": 0.55,
            "pulmonary opacity": 0.5,
            "hilar lymphadenopathy": 0.35,
            "granuloma": 0.3,
            "calcification": 0.25,
            "pulmonary infiltrate": 0.35,
            "pleural effusion": 0.2,
        },
        {"cough": 0.7, "fever": 0.4, "night sweats": 0.45, "weight loss": 0.5, "hemoptysis": 0.3},
    ),
    "chronic obstructive pulmonary disease": (
        {"emphysema": 0.75, "hyperinflation": 0.7, "bronchiectasis": 0.2},
        {"dyspnea": 0.7, "wheezing": 0.5, "productive cough": 0.4},
    ),
    "lung cancer": (
        {
            "lung mass": 0.7,
            "lung nodule": 0.35,
            "hilar lymphadenopathy": 0.35,
            "mediastinal lymphadenopathy": 0.3,
            "pleural effusion": 0.25,
            "atelectasis": 0.2,
        },
        {"hemoptysis": 0.35, "weight loss": 0.5, "cough": 0.5, "chest pain": 0.3},
    ),
    "pulmonary sarcoidosis": (
        {
            "hilar lymphadenopathy": 0.8,
            "mediastinal lymphadenopathy": 0.45,
            "increased interstitial markings": 0.45,
            "lung nodule": 0.3,
        },
        {"dyspnea": 0.5, "cough": 0.5, "fatigue": 0.4, "wheezing": 0.2},
    ),
    "idiopathic pulmonary fibrosis": (
        {"pulmonary fibrosis": 0.7, "honeycombing": 0.45, "increased interstitial markings": 0.7},
        {"dyspnea": 0.8, "crackles": 0.5, "cough": 0.4},
    ),
    "pulmonary embolism": (
        {
            "atelectasis": 0.4,
            "pleural effusion": 0.3,
            "elevated hemidiaphragm": 0.3,
            "pulmonary opacity": 0.15,
        },
        {
            "pleuritic chest pain": 0.6,
            "dyspnea": 0.7,
            "tachypnea": 0.4,
            "hypoxemia": 0.4,
            "hemoptysis": 0.15,
        },
    ),
    "acute respiratory distress syndrome": (
        {
            "consolidation": 0.55,
            "ground-glass opacity": 0.5,
            "pulmonary edema": 0.45,
            "air bronchogram": 0.3,
            "pulmonary opacity": 0.4,
        },
        {"hypoxemia": 0.8, "dyspnea": 0.6, "tachypnea": 0.5},
    ),
}
# Second labels some patients carry (comorbidity), with the chance of adding one.
COMORBID = {
    "congestive heart failure": "pneumonia",
    "chronic obstructive pulmonary disease": "lung cancer",
    "idiopathic pulmonary fibrosis": "pulmonary embolism",
}
COMORBID_RATE = 0.2
# Findings the impression may call out; a plain-English summary otherwise.
NORMAL_NEGATIONS = (
    "pneumothorax",
    "pleural effusion",
    "consolidation",
    "pulmonary edema",
    "cardiomegaly",
    "lung mass",
    "rib fracture",
    "hilar lymphadenopathy",
)

IMPRESSION_TEMPLATES = (
    ("[{A}].", "Findings compatible with [{a}].", "[{A}], new since prior."),
    ("[{A}] and [{b}].", "[{A}] with [{b}].", "[{A}]. Also [{b}]."),
)

_BRACKET = re.compile(r"\[([^\]]+)\]")


def _render(sentence: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Strip ``[term]`` markers; return the text and (start, end, term) of each marked term."""
    spans: list[tuple[int, int, str]] = []
    out, pos = [], 0
    for match in _BRACKET.finditer(sentence):
        out.append(sentence[pos : match.start()])
        start = sum(len(part) for part in out)
        out.append(match.group(1))
        spans.append((start, start + len(match.group(1)), match.group(1)))
        pos = match.end()
    out.append(sentence[pos:])
    return "".join(out), spans


class _Report:
    """Builds a report section by section and keeps the offsets of every mention."""

    def __init__(self) -> None:
        self.text = ""
        self.mentions: list[dict] = []

    def section(self, title: str) -> None:
        self.text += ("\n\n" if self.text else "") + f"{title}:"

    def sentence(self, template: str, concepts: list[str], section: str, **assertion: str) -> None:
        text, spans = _render(template)
        base = len(self.text) + 1
        self.text += " " + text
        if len(concepts) == 1:  # one concept may be named twice ("hyperexpanded ... flattened")
            concepts = concepts * len(spans)
        for (start, end, term), name in zip(spans, concepts, strict=True):
            self.mentions.append(
                {
                    "concept": name,
                    "start": base + start,
                    "end": base + end,
                    "text": term,
                    "section": section,
                    "sentence": text.strip(),
                    **assertion,
                }
            )


def _fill(template: str, terms: list[str]) -> str:
    keys = {
        "a": terms[0],
        "b": terms[1] if len(terms) > 1 else "",
        "c": terms[2] if len(terms) > 2 else "",
    }
    keys["A"] = terms[0][:1].upper() + terms[0][1:]
    return template.format(**keys)


def _needed(template: str) -> int:
    return len(set(re.findall(r"\{([abcA])\}", template.replace("{A}", "{a}"))))


def _patient(rng: random.Random, number: int, labels: list[str], profile_of: str) -> dict:
    findings_p, symptoms_p = PROFILES[profile_of]
    for extra in labels[1:]:
        findings_p = {**PROFILES[extra][0], **findings_p}
    present = [f for f, p in findings_p.items() if rng.random() < p]
    if not present:
        present = [max(findings_p, key=findings_p.get)]
    symptoms = [s for s, p in symptoms_p.items() if rng.random() < p] or [
        rng.choice(list(symptoms_p))
    ]
    report = _Report()
    age, sex = rng.randint(24, 91), rng.choice(("man", "woman"))
    report.section("INDICATION")
    parts = [rng.choice(PRESENT[s]) for s in symptoms]
    joined = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    opener = rng.choice(
        (
            "{age}-year-old {sex} with {x}.",
            "{x} in a {age}-year-old {sex}.",
            "Evaluate for cause of {x}; {age}-year-old {sex}.",
        )
    )
    indication = opener.format(age=age, sex=sex, x=joined)
    first = 1 if indication.startswith("[") else 0  # capitalise the first letter, not the marker
    indication = indication[:first] + indication[first].upper() + indication[first + 1 :]
    report.sentence(indication, symptoms, "indication")
    report.section("COMPARISON")
    report.sentence(
        rng.choice(("None.", "Radiograph from 2 years ago.", "Prior study not available.")),
        [],
        "comparison",
    )
    report.section("FINDINGS")
    rng.shuffle(present)
    for name in present:
        report.sentence(rng.choice(PRESENT[name]), [name], "findings", polarity="present")
    for name in rng.sample(INCIDENTAL, k=rng.choice((0, 0, 1, 1, 2))):
        if name not in present:
            report.sentence(rng.choice(PRESENT[name]), [name], "findings", polarity="present")
    absent = [n for n in NORMAL_NEGATIONS if n not in present and n in NEGATABLE_TERM]
    rng.shuffle(absent)
    while absent and rng.random() < 0.8:
        template = rng.choice(NEGATION_TEMPLATES)
        k = min(_needed(template), len(absent))
        if k < _needed(template):
            break
        names, absent = absent[:k], absent[k:]
        terms = [rng.choice(NEGATABLE_TERM[n]) for n in names]
        report.sentence(_fill(template, terms), names, "findings", polarity="absent")
    pool = [n for n in NEGATABLE_TERM if n not in present and n not in NORMAL_NEGATIONS]
    if rng.random() < 0.35:
        name = rng.choice(pool)
        report.sentence(
            _fill(rng.choice(UNCERTAIN_TEMPLATES), [rng.choice(NEGATABLE_TERM[name])]),
            [name],
            "findings",
            polarity="present",
            certainty="possible",
        )
    if rng.random() < 0.2:
        name = rng.choice(("rib fracture", "pneumothorax", "pleural effusion"))
        if name not in present:
            report.sentence(
                _fill(rng.choice(HISTORICAL_TEMPLATES), [NEGATABLE_TERM[name][0]]),
                [name],
                "findings",
                polarity="present",
                temporality="historical",
            )
    report.section("IMPRESSION")
    top = present[: rng.choice((1, 2))]
    template = rng.choice(IMPRESSION_TEMPLATES[len(top) - 1])
    report.sentence(_fill(template, top), top, "impression", polarity="present")
    if rng.random() < IMPRESSION_NAMES_DIAGNOSIS:
        phrase = rng.choice(("Findings may represent [{a}].", "Cannot exclude [{a}]."))
        report.sentence(
            _fill(phrase, [labels[0]]),
            [labels[0]],
            "impression",
            polarity="present",
            certainty="possible",
        )
    if not present:
        report.sentence("No acute cardiopulmonary process.", [], "impression")
    patient_id = f"P{number:03d}"
    return {
        "id": patient_id,
        "labels": labels,
        "atypical": profile_of != labels[0],
        "attributes": {"age": age, "sex": "male" if sex == "man" else "female"},
        "report": {"id": f"{patient_id}-CXR1", "text": report.text.strip()},
        "mentions": report.mentions,
    }


def generate(seed: int = SEED) -> list[dict]:
    """The cohort as plain dicts (concept *names* in ``labels`` and ``mentions``)."""
    rng = random.Random(seed)
    diagnoses = list(PROFILES)
    rows, number = [], 1
    for diagnosis in diagnoses:
        for _ in range(PATIENTS_PER_DIAGNOSIS):
            labels = [diagnosis]
            if diagnosis in COMORBID and rng.random() < COMORBID_RATE:
                labels.append(COMORBID[diagnosis])
            profile = rng.choice(diagnoses) if rng.random() < ATYPICAL_RATE else diagnosis
            rows.append(_patient(rng, number, labels, profile))
            number += 1
    order = list(range(len(rows)))
    rng.shuffle(order)  # ids do not give the diagnosis away
    for new_number, index in enumerate(order, start=1):
        row = rows[index]
        old = row["id"]
        row["id"] = f"P{new_number:03d}"
        row["report"]["id"] = row["report"]["id"].replace(old, row["id"])
    return sorted(rows, key=lambda r: r["id"])


def main() -> None:
    """Write the cohort with concept ids resolved from the seed KG."""
    from kg_loaders.seed import read_seed_concepts

    concepts = read_seed_concepts()
    by_name = {c.name: c for c in concepts}
    rows = generate()
    with COHORT_PATH.open("w", encoding="utf-8") as handle:
        for row in rows:
            row["labels"] = [by_name[name].id for name in row["labels"]]
            for mention in row["mentions"]:
                concept = by_name[mention.pop("concept")]
                surface = mention["text"].lower()
                terms = {concept.name.lower(), *(s.lower() for s in concept.synonyms)}
                if surface not in terms:
                    raise SystemExit(f"{surface!r} is not a name or synonym of {concept.name}")
                mention["concept_id"] = concept.id
                assert row["report"]["text"][mention["start"] : mention["end"]] == mention["text"]
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"wrote {len(rows)} patients to {COHORT_PATH}")


if __name__ == "__main__":
    main()
