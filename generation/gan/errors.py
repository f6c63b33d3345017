"""Errors the GAN package raises; each message names the file or input and what is wrong with it."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, not ours, or incompatible with this code."""


class UnknownLabel(ValueError):
    """A label the model cannot draw; `.classes` lists what it can."""

    def __init__(self, label: object, classes: list[str]) -> None:
        self.label = label
        self.classes = list(classes)
        super().__init__(f"unknown label {label!r}; this model can draw: {', '.join(self.classes)}")


class DatasetError(ValueError):
    """Training data that cannot be used (unknown builtin, empty folder, unreadable images...)."""
