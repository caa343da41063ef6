"""A run's Keras model to TFLite, one file per precision (float32, float16, dynamic, INT8 calibrated on
real training images), each carrying the model's record in its metadata. Installed as
``artery_edge.converters``."""
