"""Typed errors whose message is one line naming the file and the problem."""

from __future__ import annotations


class BBBError(Exception):
    """Base class of every error bbbcore raises on purpose."""


class ImageReadError(BBBError):
    """An input file is not a usable image.

    The message is one line: ``"<file name>: <problem>"`` so that the CLI and the
    dashboard can show it as it is.
    """

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class AnnotationError(BBBError):
    """An annotation file cannot be turned into truth cells."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class ModelCardError(BBBError):
    """A model file or card is missing, invalid, or does not fit an image."""
