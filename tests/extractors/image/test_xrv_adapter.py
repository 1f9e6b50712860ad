"""torchxrayvision adapter: the 18-pathology concept map, and our MONAI DenseNet-121 against
torchxrayvision's own DenseNet code (reference logits made by
``tests/fixtures/image/make_xrv_reference.py``), without downloading any weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from extractors.image.xrv_adapter import (
    build_xrv_densenet,
    convert_xrv_state_dict,
    load_xrv_model,
    xrv_findings,
    xrv_label_map,
)
from graph.errors import ModelError
from graph.records import ImageEvidence
from tests.extractors.image.xrv_reference import deterministic_state_dict, reference_input

XRV_DEFAULT_PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)  # fmt: skip


@pytest.fixture(scope="module")
def reference(fixtures):
    return json.loads((fixtures / "image" / "xrv_densenet121_reference.json").read_text())


@pytest.fixture(scope="module")
def xrv_state(reference):
    return deterministic_state_dict(reference["state_dict_shapes"])


def test_label_map_covers_the_18_pathologies_in_output_order():
    label_map = xrv_label_map()
    assert label_map.labels == XRV_DEFAULT_PATHOLOGIES
    assert label_map.concept_of("Pneumonia") == "UMLS:C0032285"
    assert label_map.concept_of("Cardiomegaly") == "UMLS:C0018800"
    assert label_map.concept_of("Effusion") == "UMLS:C0032227"
    assert len(set(label_map.concept_ids)) == 18


def test_concept_ids_exist_in_hpo_or_as_hpo_umls_xrefs(shared_data):
    """Every concept is an HPO term or a UMLS CUI that HPO cross-references (so the KG has it)."""
    text = (shared_data / "kg" / "hpo" / "hp.obo").read_text(encoding="utf-8")
    hpo_ids = {line[4:].strip() for line in text.splitlines() if line.startswith("id: HP:")}
    xrefs = {line[6:].split()[0] for line in text.splitlines() if line.startswith("xref: UMLS:")}
    known_elsewhere = {"UMLS:C0521530", "UMLS:C0016658"}  # consolidation, fracture: not in HPO
    for concept_id in xrv_label_map().concept_ids:
        assert concept_id in hpo_ids | xrefs | known_elsewhere, concept_id


def test_state_dict_layout_matches_torchxrayvision_exactly(reference):
    converted = convert_xrv_state_dict(
        {key: torch.empty(shape) for key, shape in reference["state_dict_shapes"].items()}
    )
    ours = {key: list(value.shape) for key, value in build_xrv_densenet().state_dict().items()}
    assert {key: list(value.shape) for key, value in converted.items()} == ours


def test_monai_densenet_reproduces_torchxrayvision_logits(reference, xrv_state):
    model = build_xrv_densenet()
    model.load_state_dict(convert_xrv_state_dict(xrv_state), strict=True)
    with torch.no_grad():
        logits = model.eval()(reference_input())[0].numpy()
    np.testing.assert_allclose(logits, reference["logits"], rtol=1e-4, atol=1e-2)


def test_load_from_a_safetensors_state_dict_and_predict(tmp_path, xrv_state):
    from safetensors.torch import save_file

    state = dict(xrv_state, op_threshs=torch.rand(18))  # xrv keeps thresholds as a buffer
    save_file(state, str(tmp_path / "xrv.safetensors"))
    model = load_xrv_model(tmp_path / "xrv.safetensors")
    image = np.random.default_rng(0).random((300, 240)).astype(np.float32)
    findings = xrv_findings(model, "img-1", image)
    assert [f.concept_id for f in findings] == list(xrv_label_map().concept_ids)
    assert all(isinstance(f.provenance, ImageEvidence) for f in findings)
    assert all(0.0 <= f.provenance.probability <= 1.0 for f in findings)


def test_mismatched_or_missing_weights_raise_model_error(tmp_path):
    torch.save({"classifier.weight": torch.zeros(18, 1024)}, tmp_path / "partial.pt")
    with pytest.raises(ModelError, match="do not fit DenseNet-121"):
        load_xrv_model(tmp_path / "partial.pt")
    with pytest.raises(ModelError, match="not found"):
        load_xrv_model(tmp_path / "absent.safetensors")


def test_weights_by_name_need_the_package():
    try:
        import torchxrayvision  # noqa: F401
    except Exception:
        with pytest.raises(ModelError, match="torchxrayvision cannot be imported"):
            load_xrv_model("densenet121-res224-all")
    else:
        pytest.skip("torchxrayvision is installed; the named-weights path needs a download")


def test_against_the_installed_package(xrv_state):
    xrv = pytest.importorskip("torchxrayvision")
    reference_model = xrv.models.DenseNet(weights=None, num_classes=18).eval()
    reference_model.load_state_dict(xrv_state)
    model = build_xrv_densenet()
    model.load_state_dict(convert_xrv_state_dict(reference_model.state_dict()))
    with torch.no_grad():
        expected = reference_model(reference_input())
        actual = model.eval()(reference_input())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-2)
