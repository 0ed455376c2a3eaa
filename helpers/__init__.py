"""Shared code of the Deep Learning for Healthcare notebooks.

- :mod:`helpers.config`: profiles, seeds, devices, environment report;
- :mod:`helpers.data`: dataset registry, checked downloads, loaders, splits, ``tf.data``;
- :mod:`helpers.evaluation`: clinical metrics, bootstrap intervals, thresholds, calibration;
- :mod:`helpers.plotting`: the course's plotting theme and shared figures;
- :mod:`helpers.nn`: a from-scratch NumPy network with backpropagation and gradient
  checks, mirrored in Keras;
- :mod:`helpers.models`: the CNN builders, chapter 04's training recipe
  (``fit_classifier``), Grad-CAM and feature extraction shared by the image chapters and
  benchmarks;
- :mod:`helpers.sequences`: DNA encoding (IUPAC ambiguity codes explicit), k-mers,
  padding, and the recurrent model builders;
- :mod:`helpers.gan`: DCGAN builders and training, and the checks of synthetic images
  (Fréchet distance, two-sample test, nearest-neighbour memorisation);
- :mod:`helpers.dicom`: DICOM reading, Hounsfield units, windowing, resampling,
  de-identification, and the corrected version of the syllabus's ``preprocess``;
- :mod:`helpers.trust`: image corruptions, selective prediction, subgroup metrics,
  treatment-effect error (PEHE), non-IID partitions and federated averaging.
"""

# Python runs this file before any helpers module: importing config here imports TensorFlow
# once, with its C++ start-up messages silenced, so every module (and every notebook that
# imports helpers before keras) can then import keras and tensorflow as usual.
from . import config as _config  # noqa: E402, F401
