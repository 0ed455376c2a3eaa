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
- :mod:`helpers.claims`: the lessons a chapter checks against its own outputs (the ledger);
- :mod:`helpers.trust`: image corruptions, selective prediction, subgroup metrics,
  treatment-effect error (PEHE), non-IID partitions and federated averaging.
"""

# Importing the package imports nothing heavy: helpers.data, evaluation, trust, plotting,
# dicom and claims work without TensorFlow. helpers.config imports TensorFlow once, with its
# C++ start-up messages silenced, and every module that needs Keras (models, gan, sequences)
# imports config first; a notebook that imports helpers.config before keras sees no noise.
