"""artery-edge: train a MobileNetV2 image classifier, ship it as TFLite, run it on edge devices."""

__version__ = "0.1.0"
