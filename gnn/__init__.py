"""Heterogeneous GNNs over patient graphs: models, training, evaluation, baseline, explanations.

Usage::

    from gnn import train, diagnose_patient
    result = train(graph=graph, patients=patients, model="rgcn")
    diagnoses = diagnose_patient(result, graph, "P007")
"""

from __future__ import annotations

from gnn.baseline import finding_bag, logistic_baseline
from gnn.evaluate import Evaluator, expected_calibration_error
from gnn.explain import attributions, explain, faithfulness
from gnn.models import MODELS, PatientDiseaseModel, build_model
from gnn.predict import diagnose_patient
from gnn.train import TrainResult, cpu_threads, train

__all__ = [
    "MODELS",
    "Evaluator",
    "PatientDiseaseModel",
    "TrainResult",
    "attributions",
    "build_model",
    "cpu_threads",
    "diagnose_patient",
    "expected_calibration_error",
    "explain",
    "faithfulness",
    "finding_bag",
    "logistic_baseline",
    "train",
]
