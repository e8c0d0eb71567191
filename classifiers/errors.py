"""Errors raised by the screening classifier.

    ClassifierError                 base of everything below
    ├── TrainingDataError           texts/labels unusable (length mismatch, one class, too few)
    └── ModelFormatError            bytes are not a serialized screening model
        └── IncompatibleModelError  a model written by another format version: retrain it

Bad arguments to plain functions (a recall target outside (0, 1], a negative audit fraction)
raise ``ValueError`` naming the argument.
"""

from __future__ import annotations


class ClassifierError(Exception):
    """Base class of the classifier's errors."""


class TrainingDataError(ClassifierError):
    """The training texts and labels cannot be used to fit a model."""


class ModelFormatError(ClassifierError):
    """The bytes given to ``loads`` are not a serialized screening model."""


class IncompatibleModelError(ModelFormatError):
    """The model was serialized by an incompatible format version."""
