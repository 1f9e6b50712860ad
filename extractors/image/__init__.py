"""Image extractor: DICOM/PNG/JPEG -> validated, de-identified pixels -> calibrated findings.

Modules, in pipeline order: :mod:`~extractors.image.dicom` (safe DICOM decoding and display
LUTs), :mod:`~extractors.image.dicomdir`, :mod:`~extractors.image.deid` (PS3.15 Annex E),
:mod:`~extractors.image.readers` (``load_image``), :mod:`~extractors.image.transforms` (MONAI),
:mod:`~extractors.image.model`, :mod:`~extractors.image.calibration`,
:mod:`~extractors.image.train`, :mod:`~extractors.image.predict` (``ImageExtractor`` ->
``Finding`` records), :mod:`~extractors.image.evaluate` and
:mod:`~extractors.image.xrv_adapter` (torchxrayvision weights). Nothing heavy is imported here.
"""
