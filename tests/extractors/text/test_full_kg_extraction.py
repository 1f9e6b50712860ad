"""With the full default KG (HPO + annotations, DO, SYMP and the seed, built from the shared
ontology files), a report with laterality, severity and hedges gives findings only: no
qualifier concept ("Right", "Focal", "Excluded"), and one concept per mention (issue 12, item 3).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

REPORT = (
    "FINDINGS: There is a right-sided pleural effusion. No focal consolidation. Cannot exclude "
    "pneumonia in the left lower lobe. Mild cardiomegaly. Bilateral pulmonary edema. Small "
    "left-sided pneumothorax, unchanged. Chronic interstitial markings. The patient reports "
    "intermittent shortness of breath and dyspnea on exertion.\n"
    "IMPRESSION: Moderate bilateral pleural effusions, right greater than left. Focal airspace "
    "disease is unlikely. Acute on chronic congestive heart failure."
)
# Words of the report that HPO, UMLS or SNOMED CT have as qualifier concepts.
QUALIFIER_WORDS = {
    "right",
    "left",
    "right-sided",
    "left-sided",
    "bilateral",
    "focal",
    "mild",
    "moderate",
    "small",
    "chronic",
    "acute",
    "intermittent",
    "exclude",
    "excluded",
    "unchanged",
}
CLINICAL_KINDS = {"finding", "symptom", "disease"}

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def full_kg(shared_data, tmp_path_factory):
    """Settings of a store built like ``kgdx kg build --sources default``, from shared files."""
    from graph.settings import Settings
    from kg_loaders.build import build_kg
    from kg_loaders.seed import SEED_DIR

    kg = shared_data / "kg"
    home = tmp_path_factory.mktemp("full-kg")
    settings = Settings(home=home, db_path=home / "kg.lbug")
    sources = [
        f"hpo={kg / 'hpo/hp.obo'}",
        f"hpoa={kg / 'hpo/phenotype.hpoa'}",
        f"do={kg / 'do'}",
        f"symp={kg / 'do/symp.obo'}",
        f"seed={SEED_DIR}",
    ]
    result = build_kg(sources=sources, settings=settings)
    assert result.concepts > 40_000 and result.crosswalk["via_name"] > 100
    return settings


@pytest.fixture(scope="module")
def extracted(full_kg):
    """The store's concepts by id and the report's findings."""
    from extractors.text import ReportExtractor
    from graph.stores import open_store

    with open_store("embedded", settings=full_kg) as store:
        concepts = {concept.id: concept for concept in store.iter_concepts()}
    extractor = ReportExtractor.from_concepts(concepts.values())
    return concepts, extractor.extract(REPORT, "laterality")


def test_no_qualifier_is_a_finding(extracted):
    concepts, findings = extracted
    assert findings
    for finding in findings:
        concept = concepts[finding.concept_id]
        assert concept.kind.value in CLINICAL_KINDS, (finding.provenance.text, concept)
        assert finding.provenance.text.lower() not in QUALIFIER_WORDS, finding
    # the qualifier concepts are in the KG, typed as such: the filter is not an accident
    for cui in ("UMLS:C0444532", "UMLS:C0205234"):  # Right, Focal (HPO xrefs)
        assert concepts[cui].kind.value == "qualifier"


def test_one_concept_per_mention_and_one_node_per_finding(extracted):
    concepts, findings = extracted
    spans = Counter((f.provenance.start, f.provenance.end) for f in findings)
    assert all(n == 1 for n in spans.values()), spans.most_common(3)
    found = {f.concept_id for f in findings}
    # pleural effusion, dyspnea, pulmonary edema: one node with the SYMP term in its xrefs
    for cui, symp in (
        ("UMLS:C0032227", "SYMP:0000107"),
        ("UMLS:C0013404", "SYMP:0019153"),
        ("UMLS:C0034063", "SYMP:0019151"),
    ):
        assert cui in found and symp not in concepts and symp in concepts[cui].xrefs
    by_text = {f.provenance.text.lower(): f for f in findings}
    assert by_text["consolidation"].assertion.polarity.value == "absent"
    assert by_text["pneumonia"].assertion.certainty.value == "possible"
    assert {"UMLS:C0018800", "UMLS:C0032326", "UMLS:C0018802"} <= found


def test_cli_on_the_full_kg_gives_the_same_clean_findings(full_kg, extracted, monkeypatch):
    """The product path: ``kgdx extract report --text ... --kg store --json``."""
    from typer.testing import CliRunner

    from api.cli import app

    monkeypatch.setenv("KGDX_HOME", str(full_kg.home))
    monkeypatch.setenv("KGDX_DB_PATH", str(full_kg.db_path))
    result = CliRunner().invoke(
        app, ["extract", "report", "--text", REPORT, "--kg", "store", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("{") :])["findings"]
    concepts, findings = extracted
    assert [(r["start"], r["concept_id"]) for r in rows] == [
        (f.provenance.start, f.concept_id) for f in findings
    ]
    assert all(concepts[r["concept_id"]].kind.value in CLINICAL_KINDS for r in rows)
