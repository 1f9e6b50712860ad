"""Phrase banks for the synthetic demo cohort (see ``generate.py`` and ``README.md``).

Brackets mark the concept mention inside a sentence: ``"The [heart is enlarged]."``. Each
bracketed term must be the name or a synonym of its concept in the seed KG; ``generate.py``
checks that, so the text extractor can in principle find every mention.
"""

from __future__ import annotations

# Sentences stating a finding as present (findings section) or a symptom (indication).
PRESENT: dict[str, tuple[str, ...]] = {
    "cardiomegaly": (
        "The [heart is enlarged].",
        "There is moderate [cardiomegaly].",
        "Mild [cardiomegaly] is noted.",
        "[Enlarged cardiac silhouette].",
        "[Cardiac enlargement] is again noted.",
    ),
    "pleural effusion": (
        "Small bilateral [pleural effusions].",
        "There is a moderate right [pleural effusion].",
        "Left [effusion] with [blunting of the costophrenic angle].",
        "Layering left [pleural fluid].",
    ),
    "pneumothorax": ("Small right apical [pneumothorax].", "There is a left [ptx]."),
    "atelectasis": (
        "Bibasilar [atelectasis].",
        "Linear [subsegmental atelectasis] at the left base.",
        "Right lower lobe [volume loss].",
        "Patchy [atelectatic changes] at the bases.",
    ),
    "consolidation": (
        "Right lower lobe [consolidation].",
        "There is dense [airspace consolidation] in the left lower lobe.",
        "Focal [consolidation] in the right middle lobe.",
        "Lingular [airspace disease].",
    ),
    "pulmonary edema": (
        "Mild [interstitial edema].",
        "There is [pulmonary edema].",
        "Findings of [pulmonary oedema] with perihilar haziness.",
        "Diffuse [alveolar edema].",
    ),
    "emphysema": (
        "[Emphysematous changes] in the upper lobes.",
        "Background [emphysema].",
        "Apical [bullae] are seen.",
    ),
    "lung nodule": (
        "A 9 mm [nodule] in the right upper lobe.",
        "Several small [pulmonary nodules] bilaterally.",
        "There is a 1.2 cm [pulmonary nodule] in the left lower lobe.",
    ),
    "lung mass": (
        "A 4 cm [mass] in the right upper lobe.",
        "Spiculated left upper lobe [pulmonary mass].",
        "Right [hilar mass].",
    ),
    "pulmonary infiltrate": (
        "Patchy [infiltrate] in the right upper lobe.",
        "Bilateral [infiltrates].",
    ),
    "pleural thickening": (
        "Biapical [pleural thickening].",
        "Mild [pleural scarring] at the left apex.",
    ),
    "pulmonary fibrosis": (
        "Basilar predominant [fibrosis].",
        "[Fibrotic changes] in both lower lobes.",
        "Chronic [pulmonary fibrosis].",
    ),
    "rib fracture": (
        "Acute right sixth [rib fracture].",
        "Displaced left lateral [rib fractures].",
    ),
    "hiatal hernia": ("Small [hiatal hernia].", "Moderate [hiatus hernia]."),
    "pulmonary opacity": (
        "Patchy [opacities] in both lungs.",
        "Right upper lobe [opacity].",
        "Bilateral peripheral [airspace opacities].",
        "Hazy [opacity] at the left base.",
    ),
    "ground-glass opacity": (
        "Bilateral [ground-glass opacities].",
        "Peripheral [ground glass opacity] in the lower zones.",
        "Multifocal [ground-glass opacification].",
    ),
    "hyperinflation": (
        "[Hyperinflated lungs].",
        "[Hyperexpanded lungs] with [flattened hemidiaphragms].",
        "[Hyperinflation] of the lungs.",
    ),
    "kerley b lines": ("[Kerley B lines] at the bases.", "Prominent [septal lines]."),
    "pulmonary vascular congestion": (
        "[Pulmonary vascular congestion].",
        "Mild [vascular congestion].",
        "[Pulmonary venous congestion].",
    ),
    "cephalization": (
        "[Cephalization of the pulmonary vasculature].",
        "There is [upper lobe venous diversion].",
    ),
    "air bronchogram": (
        "[Air bronchograms] are present.",
        "[Air bronchograms] within the opacity.",
    ),
    "increased interstitial markings": (
        "Increased [interstitial markings].",
        "Bilateral [reticular opacities].",
        "Coarse [interstitial opacities] at the bases.",
        "Diffuse [reticulonodular opacities].",
    ),
    "granuloma": (
        "[Calcified granuloma] in the left mid lung.",
        "A few scattered [calcified granulomas].",
    ),
    "calcification": ("Dense [calcifications] in the right apex.",),
    "hilar lymphadenopathy": (
        "[Bilateral hilar adenopathy].",
        "[Enlarged hila].",
        "Right [hilar lymphadenopathy].",
    ),
    "mediastinal lymphadenopathy": (
        "[Mediastinal lymphadenopathy].",
        "Right [paratracheal adenopathy].",
    ),
    "pulmonary cavity": (
        "A thick-walled [cavitary lesion] in the right upper lobe.",
        "[Cavitation] in the left apex.",
    ),
    "bronchiectasis": ("Lower lobe [bronchiectasis].", "Mild [bronchiectatic changes]."),
    "elevated hemidiaphragm": (
        "[Elevated hemidiaphragm] on the right.",
        "[Elevation of the hemidiaphragm] on the left.",
    ),
    "honeycombing": ("Subpleural [honeycombing].", "Basal [honeycomb pattern]."),
    "scoliosis": ("Mild thoracic [scoliosis].", "Dextroconvex [scoliosis]."),
    "tortuous aorta": ("[Tortuous aorta].", "[Tortuosity of the aorta]."),
    "widened mediastinum": ("[Widened mediastinum].",),
    "pericardial effusion": ("Possible [pericardial effusion].",),
    # symptoms (indication)
    "cough": ("[cough]", "[dry cough]", "[coughing]"),
    "productive cough": ("[productive cough]", "[purulent sputum]"),
    "fever": ("[fever]", "[fevers]", "[pyrexia]"),
    "chills": ("[chills]", "[rigors]"),
    "dyspnea": ("[shortness of breath]", "[dyspnea]", "[SOB]", "[breathlessness]"),
    "chest pain": ("[chest pain]", "[chest discomfort]"),
    "pleuritic chest pain": ("[pleuritic chest pain]", "[pleuritic pain]"),
    "hemoptysis": ("[hemoptysis]", "[blood-tinged sputum]"),
    "orthopnea": ("[orthopnea]",),
    "leg edema": ("[bilateral leg swelling]", "[pedal edema]", "[lower extremity edema]"),
    "night sweats": ("[night sweats]",),
    "weight loss": ("[weight loss]", "[unintentional weight loss]"),
    "wheezing": ("[wheezing]", "[wheeze]"),
    "fatigue": ("[fatigue]", "[malaise]"),
    "tachypnea": ("[tachypnea]",),
    "hypoxemia": ("[hypoxia]", "[desaturation]", "[hypoxemia]"),
    "anosmia": ("[loss of smell]", "[anosmia]"),
    "crackles": ("[crackles]", "[rales]"),
}

# The term used when a finding is negated or called uncertain ("No [pneumothorax].").
NEGATABLE_TERM: dict[str, tuple[str, ...]] = {
    "pneumothorax": ("pneumothorax",),
    "pleural effusion": ("pleural effusion", "effusion", "pleural effusions"),
    "consolidation": ("consolidation", "airspace consolidation", "airspace disease"),
    "pulmonary edema": ("pulmonary edema", "edema"),
    "cardiomegaly": ("cardiomegaly",),
    "lung nodule": ("nodule", "pulmonary nodules"),
    "lung mass": ("mass", "pulmonary mass"),
    "pulmonary vascular congestion": ("vascular congestion", "pulmonary vascular congestion"),
    "hilar lymphadenopathy": ("hilar adenopathy", "hilar lymphadenopathy"),
    "rib fracture": ("rib fracture", "fracture"),
    "atelectasis": ("atelectasis",),
    "pulmonary opacity": ("opacity", "opacities"),
    "pulmonary infiltrate": ("infiltrate",),
    "emphysema": ("emphysema",),
    "pulmonary cavity": ("cavitation", "cavitary lesion"),
    "ground-glass opacity": ("ground-glass opacity",),
    "kerley b lines": ("kerley b lines",),
    "increased interstitial markings": ("interstitial markings",),
    "widened mediastinum": ("widened mediastinum",),
    "pleural thickening": ("pleural thickening",),
}

NEGATION_TEMPLATES: tuple[str, ...] = (
    "No [{a}].",
    "No [{a}] or [{b}].",
    "There is no [{a}].",
    "No evidence of [{a}].",
    "Negative for [{a}].",
    "No [{a}], [{b}] or [{c}].",
    "[{A}] is not seen.",
    "Without [{a}] or [{b}].",
)
UNCERTAIN_TEMPLATES: tuple[str, ...] = (
    "Possible small [{a}].",
    "Cannot exclude early [{a}].",
    "Findings may represent [{a}].",
    "Questionable [{a}].",
    "[{A}] is not excluded.",
)
HISTORICAL_TEMPLATES: tuple[str, ...] = (
    "History of [{a}].",
    "Old healed [{a}].",
    "Prior [{a}], now resolved.",
)
# Findings that turn up as incidental, diagnosis-neutral distractors.
INCIDENTAL: tuple[str, ...] = (
    "scoliosis",
    "tortuous aorta",
    "granuloma",
    "hiatal hernia",
    "pleural thickening",
)
