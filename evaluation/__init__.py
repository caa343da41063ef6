"""Keras and every TFLite variant scored on the same images or frames: clinical metrics with bootstrap
intervals, parity, reports and model cards. Installed as ``artery_edge.evaluation``."""
