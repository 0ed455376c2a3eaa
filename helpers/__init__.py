"""Shared code of the Deep Learning for Healthcare notebooks.

- :mod:`helpers.config`: profiles, seeds, devices, environment report;
- :mod:`helpers.data`: dataset registry, checked downloads, loaders, splits, ``tf.data``;
- :mod:`helpers.evaluation`: clinical metrics, bootstrap intervals, thresholds, calibration;
- :mod:`helpers.plotting`: the course's plotting theme and shared figures;
- :mod:`helpers.nn`: a from-scratch NumPy network with backpropagation and gradient
  checks, mirrored in Keras, and a 2D convolution, pooling and receptive field by hand;
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
  treatment-effect error (PEHE), non-IID partitions and federated averaging;
- :mod:`helpers.volumes`: NIfTI volumes (nibabel), the Decathlon hippocampus loader,
  Dice and HD95, and the 3D classifier and U-Net of chapter 05;
- :mod:`helpers.ehr`: PhysioNet 2012 ICU stays (parsing, hourly grid, mask, time gaps,
  cache), the Raindrop splits, the DeepSurv cohorts and survival metrics;
  :mod:`helpers.ehr_models`: the GRU-D layer, the mortality models and the Cox loss;
- :mod:`helpers.leakage`: near-duplicate images across splits (nearest-neighbour distances,
  a threshold calibrated on unrelated images, duplicate clusters) and a grouped validation
  split that keeps each cluster on one side;
- :mod:`helpers.exercises`: the exercise checks and the student edition;
- :mod:`helpers.course`: the course runner behind ``make course`` (papermill, timings).
"""

# Importing the package imports nothing heavy: helpers.data, evaluation, trust, plotting,
# dicom, claims, volumes, ehr, leakage and exercises work without TensorFlow. helpers.config imports TensorFlow once, with its
# C++ start-up messages silenced, and every module that needs Keras (models, gan, sequences)
# imports config first; a notebook that imports helpers.config before keras sees no noise.
