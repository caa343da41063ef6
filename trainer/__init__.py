"""Training (TensorFlow, imported lazily): the patch classifier's two-stage MobileNetV2 recipe and the
whole-frame map model's, from data folders to a run folder whose ``run.json`` carries the model's
record (``edge.model_record``). Installed as ``artery_edge.trainer``."""
