"""The default path (no store: the chest seed KG plus the label lexicon) finds the common chest
diagnoses and findings of radiology reports (issue 12, item 2)."""

from __future__ import annotations

import pytest

# sentence -> the seed concept (by name) its finding must be, one per sentence
SENTENCES = [
    ("Findings consistent with reactivation tuberculosis.", "pulmonary tuberculosis"),
    ("History of tuberculosis, treated.", "tuberculosis"),
    ("Known lung cancer in the right upper lobe.", "lung cancer"),
    ("Patient with breast cancer, status post mastectomy.", "breast cancer"),
    ("Carcinoma of the breast with new symptoms.", "breast cancer"),
    ("CT is recommended to exclude pulmonary embolism.", "pulmonary embolism"),
    ("A calcified granuloma projects over the left apex.", "granuloma"),
    ("Sequela of a prior granulomatous process.", "granuloma"),
    ("Mild degenerative changes of the thoracic spine.", "spondylosis"),
    ("Degenerative change in the spine is again seen.", "spondylosis"),
    ("Moderate thoracic spondylosis.", "spondylosis"),
    ("Bridging osteophytes along the midthoracic spine.", "spondylosis"),
    ("Multilevel degenerative disc disease.", "intervertebral disc degeneration"),
    (
        "Flowing anterior osteophytes compatible with DISH.",
        "diffuse idiopathic skeletal hyperostosis",
    ),
    ("Patchy right basilar airspace disease.", "consolidation"),
    ("Atherosclerotic calcification of the thoracic aorta.", "aortic atherosclerosis"),
    ("The aortic arch is calcified; calcified aortic knob.", "aortic atherosclerosis"),
    ("Extensive atherosclerotic vascular disease.", "atherosclerosis"),
    ("Exaggerated kyphosis of the thoracic spine.", "kyphosis"),
    ("Levoscoliosis of the lumbar spine.", "scoliosis"),
    ("Linear scarring in the lingula.", "scarring"),
    ("Remote healed fracture of the right clavicle.", "fracture"),
    ("Multiple old rib fractures on the left.", "rib fracture"),
    ("Wedge compression deformity of T12.", "vertebral compression fracture"),
    ("Eventration of the right hemidiaphragm is unchanged.", "diaphragmatic eventration"),
    ("The bones are diffusely osteopenic.", "osteopenia"),
    ("Subcutaneous air in the right chest wall.", "subcutaneous emphysema"),
    ("Free intraperitoneal air beneath the right hemidiaphragm.", "pneumoperitoneum"),
    ("Paratracheal and hilar adenopathy.", "hilar lymphadenopathy"),
    ("Axillary adenopathy.", "lymphadenopathy"),
    ("Osseous metastases in the ribs.", "metastasis"),
    ("Peribronchial thickening suggests bronchitis.", "bronchial wall thickening"),
    ("Acute bronchitis cannot be excluded.", "bronchitis"),
    ("Lungs are hyperinflated.", "hyperinflation"),
    ("Bronchiectasis from cystic fibrosis.", "cystic fibrosis"),
    ("Degenerative changes of both shoulders.", "osteoarthritis"),
    ("Pectus carinatum deformity.", "pectus carinatum"),
    ("Aneurysmal dilatation of the aorta is unchanged.", "aortic aneurysm"),
    ("Substernal goiter displaces the trachea.", "goiter"),
    ("Right upper quadrant calcified gallstones.", "cholelithiasis"),
    ("Mild mediastinal shift to the left.", "mediastinal shift"),
    ("Pneumomediastinum tracks into the neck.", "pneumomediastinum"),
]


@pytest.mark.parametrize(("sentence", "name"), SENTENCES, ids=[s for s, _ in SENTENCES])
def test_common_chest_findings_are_found_without_a_store(
    seed_extractor, seed_names, sentence, name
):
    found = {f.concept_id for f in seed_extractor.extract(sentence)}
    assert seed_names[name] in found, (sentence, sorted(found))


def test_specific_terms_win_over_the_words_inside_them(seed_extractor, seed_names):
    """Longest match: a subcutaneous or mediastinal emphysema is not lung emphysema, cystic
    fibrosis is not pulmonary fibrosis, a rib fracture is not only a fracture."""
    text = (
        "Subcutaneous emphysema. Mediastinal emphysema. Cystic fibrosis. Rib fracture. "
        "Calcified pleural plaques."
    )
    found = [f.concept_id for f in seed_extractor.extract(text)]
    assert seed_names["emphysema"] not in found
    assert seed_names["pulmonary fibrosis"] not in found
    assert seed_names["fracture"] not in found
    assert found[:4] == [
        seed_names["subcutaneous emphysema"],
        seed_names["pneumomediastinum"],
        seed_names["cystic fibrosis"],
        seed_names["rib fracture"],
    ]
