"""A patient with too many findings is refused before anything is written (red team of issue 11:
one 1.8 MB request of 'cough ' repeated made 30,000 findings, ~70 s under the store lock, 20 GB
of server memory)."""

from __future__ import annotations

import pytest

from api.engine import Engine
from graph.errors import InputError
from graph.records import Patient, Report
from graph.settings import Settings


@pytest.fixture()
def engine(tmp_path):
    settings = Settings(home=tmp_path / "home", db_path=tmp_path / "limits.lbug",
                        max_patient_findings=50)  # fmt: skip
    engine = Engine(settings=settings)
    engine.build_seed_kg()
    yield engine
    engine.store.close()


def test_a_report_with_too_many_findings_is_refused_and_nothing_is_stored(engine) -> None:
    engine.ingest([Patient(id="ok", reports=(Report(id="R1", text="Small left effusion."),))])
    flood = Patient(id="flood", reports=(Report(id="R1", text="Cough. " * 60),))
    with pytest.raises(InputError, match=r"60 findings, more than .* limit of 50"):
        engine.ingest([flood])
    ids = set(engine.store.patient_ids())
    assert ids == {"ok"}
    # the stored patient is untouched, and a patient under the limit still goes in
    assert engine.store.get_patient("ok").findings
    engine.ingest([Patient(id="flood", reports=(Report(id="R1", text="Cough. " * 10),))])
    assert len(engine.store.get_patient("flood").findings) == 10


def test_put_of_findings_given_as_they_are_is_capped_too(engine) -> None:
    stored = engine.ingest([Patient(id="p", reports=(Report(id="R1", text="Cough. " * 40),))])
    many = stored[0].model_copy(update={"findings": stored[0].findings * 2})
    with pytest.raises(InputError, match="80 findings"):
        engine.ingest([many], extract=False, keep_images=False)
    assert len(engine.store.get_patient("p").findings) == 40
