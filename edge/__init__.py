"""artery-edge on-device runtime: TFLite inference with Pillow and NumPy, never TensorFlow."""

from edge.classifier import Classifier, Prediction
from edge.errors import EdgeError, ImageError, ModelError
from edge.imaging import load_image
from edge.metadata import ModelMetadata, read_metadata

__all__ = [
    "Classifier",
    "EdgeError",
    "ImageError",
    "ModelError",
    "ModelMetadata",
    "Prediction",
    "load_image",
    "read_metadata",
]
