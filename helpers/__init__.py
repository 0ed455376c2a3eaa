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

import os as _os

# TensorFlow's oneDNN CPU kernels. On Linux, TensorFlow switches them on by default only for
# CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (tensorflow/core/util/port.cc,
# DefaultOneDnnPolicy); elsewhere (e.g. AMD Zen 3, many laptops) it uses its Eigen kernels,
# whose 3D convolutions are about 4x slower here: chapter 05's 3D CNN at 64 voxels trained
# and predicted in 23 s with Eigen, 5-7 s with oneDNN, on 2 AMD EPYC cores. The variable is
# read once, when TensorFlow starts, so it is set before any module imports TensorFlow; a
# value you set yourself wins (TF_ENABLE_ONEDNN_OPTS=0 for the Eigen kernels). The numbers
# change in the last digits either way, as they do between CPU types.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Importing the package imports nothing heavy: helpers.data, evaluation, trust, plotting,
# dicom, claims, volumes, ehr, leakage and exercises work without TensorFlow. helpers.config imports TensorFlow once, with its
# C++ start-up messages silenced, and every module that needs Keras (models, gan, sequences)
# imports config first; a notebook that imports helpers.config before keras sees no noise.
