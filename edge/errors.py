"""The project's errors: each carries a one-line message meant for the user.

:class:`ArteryEdgeError` is the root of every error the packages raise on purpose (bad input,
a damaged file, a failed download); the CLI prints those as ``error: ...``. Anything else
(a ValueError from a bug included) keeps its traceback. It lives here, in the smallest
package, because every other package (and the TF-free device install) imports ``edge``.
"""


class ArteryEdgeError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits non-zero."""


class EdgeError(ArteryEdgeError):
    """An error of the edge runtime."""


class ImageError(EdgeError):
    """An image file is missing, empty, corrupt, too large or not an image."""


class ModelError(EdgeError):
    """A model file is missing, not a TFLite flatbuffer, or not an image classifier."""


class PredictionError(EdgeError):
    """A model produced no usable output for an input (e.g. NaN): never a class."""


class OptionError(ArteryEdgeError, ValueError):
    """An option's value is out of range or conflicts with another: refused before any work (exit 2)."""
