"""artery-edge: train a MobileNetV2 image classifier, ship it as TFLite, run it on edge devices."""

from edge.version import __version__

__all__ = ["__version__"]
