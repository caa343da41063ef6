"""Errors the edge runtime raises: each carries a one-line message meant for the user."""


class EdgeError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits non-zero."""


class ImageError(EdgeError):
    """An image file is missing, empty, corrupt, too large or not an image."""


class ModelError(EdgeError):
    """A model file is missing, not a TFLite flatbuffer, or not an image classifier."""


class PredictionError(EdgeError):
    """A model produced no usable output for an input (e.g. NaN): never a class."""
