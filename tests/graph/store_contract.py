"""The data and the ``kg`` fixture of the store contract tests (``test_store_contract*.py``):
a small chest KG on every registered backend. The embedded LadybugDB store always runs; the Neo4j
store when ``KGDX_TEST_NEO4J_URI`` points at a live Neo4j 5 (user/password from
``KGDX_TEST_NEO4J_USER`` / ``_PASSWORD``); its database is cleared first, so never point it at a
database you care about.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from graph.records import (
    Assertion,
    Concept,
    Finding,
    ImageEvidence,
    Patient,
    Relation,
    Report,
    TextSpan,
)
from graph.records import Image as ImageRecord
from graph.settings import Settings
from graph.stores import open_store

CHF, CARDIO, EFFUSION, HF, EDEMA, LUNG = (
    "UMLS:C0018802",
    "UMLS:C0018800",
    "UMLS:C0032227",
    "UMLS:C0018801",
    "UMLS:C0034063",
    "UMLS:C0024109",
)
CONCEPTS = [
    Concept(id=CHF, name="congestive heart failure", kind="disease", xrefs=("DOID:6000",)),
    Concept(id=HF, name="heart failure", kind="disease"),
    Concept(id=CARDIO, name="cardiomegaly", kind="finding", synonyms=("enlarged heart",)),
    Concept(id=EFFUSION, name="pleural effusion", kind="finding", synonyms=("effusion",)),
    Concept(id=EDEMA, name="pulmonary edema", kind="finding"),
    Concept(id=LUNG, name="lung", kind="anatomy"),
]
RELATIONS = [
    Relation(src=CHF, dst=CARDIO, type="HAS_FINDING", sources=("seed",)),
    Relation(
        src=CHF,
        dst=EFFUSION,
        type="HAS_FINDING",
        sources=("seed",),
        attributes={"freq": "HP:0040282"},
    ),
    Relation(src=CHF, dst=HF, type="IS_A", sources=("seed",)),
    Relation(src=EDEMA, dst=LUNG, type="FINDING_SITE", sources=("seed",), weight=0.5),
]
REPORT = "FINDINGS: The heart is enlarged. No pleural effusion.\nIMPRESSION: Cardiomegaly."


def contract_patient(pid: str = "P001") -> Patient:
    cardio = REPORT.index("heart is enlarged")
    effusion = REPORT.index("pleural effusion")
    return Patient(
        id=pid,
        reports=(Report(id="r1", text=REPORT, date="2026-01-02"),),
        images=(ImageRecord(id="i1", modality="CR"),),
        findings=(
            Finding(
                concept_id=CARDIO,
                provenance=TextSpan(
                    doc_id="r1",
                    section="findings",
                    sentence="The heart is enlarged.",
                    start=cardio,
                    end=cardio + 17,
                    text="heart is enlarged",
                ),
            ),
            Finding(
                concept_id=EFFUSION,
                assertion=Assertion(polarity="absent"),
                provenance=TextSpan(
                    doc_id="r1",
                    section="findings",
                    sentence="No pleural effusion.",
                    start=effusion,
                    end=effusion + 16,
                    text="pleural effusion",
                ),
            ),
            Finding(
                concept_id=EDEMA,
                confidence=0.83,
                provenance=ImageEvidence(image_id="i1", model_id="cnn-test", probability=0.83),
            ),
        ),
        labels=(CHF,),
        attributes={"age": 71, "sex": "F"},
    )


def _backends() -> list:
    params = [pytest.param("embedded", id="embedded")]
    reason = "set KGDX_TEST_NEO4J_URI to run the contract tests against a live Neo4j 5"
    params.append(
        pytest.param(
            "neo4j",
            id="neo4j",
            marks=[
                pytest.mark.neo4j,
                pytest.mark.skipif(not os.environ.get("KGDX_TEST_NEO4J_URI"), reason=reason),
            ],
        )
    )
    return params


@pytest.fixture(params=_backends())
def kg(request, tmp_path) -> Iterator:
    settings = Settings(
        home=tmp_path,
        db_path=tmp_path / "contract.lbug",
        neo4j_uri=os.environ.get("KGDX_TEST_NEO4J_URI", "bolt://localhost:7687"),
        neo4j_user=os.environ.get("KGDX_TEST_NEO4J_USER", "neo4j"),
        neo4j_password=os.environ.get("KGDX_TEST_NEO4J_PASSWORD", ""),
    )
    with open_store(request.param, settings=settings) as store:
        store.clear()
        store.upsert_concepts(CONCEPTS)
        store.upsert_relations(RELATIONS)
        yield store
