"""Shared code of the Deep Learning for Healthcare notebooks.

- :mod:`helpers.config`: profiles, seeds, devices, environment report;
- :mod:`helpers.data`: dataset registry, checked downloads, loaders, splits, ``tf.data``;
- :mod:`helpers.plotting`: the course's plotting theme and shared figures.
"""
