"""artery-edge on-device runtime: TFLite inference with Pillow and NumPy, never TensorFlow."""

from artery_edge.edge.classifier import Classifier, Prediction
from artery_edge.edge.errors import EdgeError, ImageError, ModelError
from artery_edge.edge.imaging import load_image
from artery_edge.edge.metadata import ModelMetadata, read_metadata

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
