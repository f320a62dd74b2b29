"""Kept classifiers: torch modules of a fitted ``ImprintingClassifier``, with or without its FM,
their model files and the ``python -m imprint`` command line."""
