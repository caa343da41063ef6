"""The MobileNetV2 transfer-learning model, its two training stages and its serving graph.

raw RGB 0..255 -> augmentation (training only) -> Rescaling to [-1, 1] -> MobileNetV2
(called with ``training=False`` so BatchNorm always uses its moving statistics)
-> global average pooling -> dropout -> Dense(softmax, L2).

With ``weights="none"`` a frozen base would be a frozen *random* feature extractor, which
learns nothing (measured: test accuracy 0.50 on the synthetic demo). So a model built from
scratch trains the whole network in both stages, and its BatchNorm layers learn batch
statistics (momentum 0.9 instead of 0.999, so the moving averages settle within a few
hundred steps).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import keras
from keras import layers, ops

from artery_edge.trainer.augment import SiteAugmentation
from artery_edge.trainer.config import ConfigError, TrainConfig
from artery_edge.trainer.keras_files import keras_errors

IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
SCRATCH_BN_MOMENTUM = 0.9

AUGMENTATION = "augmentation"
RESCALE = "rescale"
BASE = "mobilenetv2"


def imagenet_weights_file(alpha: float, image_size: int) -> Path:
    """Where Keras looks for cached ImageNet weights before it tries to download them."""
    rows = image_size if image_size in IMAGENET_SIZES else 224
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def resolve_weights(config: TrainConfig) -> str | None:
    """The ``weights=`` argument for MobileNetV2. ``imagenet`` is left to Keras, which uses
    its cache or downloads; :func:`build_base` turns a failed download into a clear error.
    A run started from another run (``init_from``) needs none, the parent's weights replace them,
    unless it blends the parent with them (``init_blend`` < 1)."""
    if config.weights == "none" or (config.init_from and config.init_blend == 1):
        return None
    if config.weights != "imagenet":
        path = Path(config.weights)
        if not path.is_file():
            raise ConfigError(f"weights file {path} does not exist")
        if path.suffix != ".h5":
            raise ConfigError(f"weights file {path} must be a Keras .h5 file")
        return str(path)
    if config.alpha not in IMAGENET_ALPHAS:
        raise ConfigError(f"no ImageNet weights for alpha {config.alpha}; choose one of {IMAGENET_ALPHAS}")
    return "imagenet"


def build_base(config: TrainConfig) -> keras.Model:
    """MobileNetV2 without its top; weights from Keras' cache, a download, a file or none."""
    weights = resolve_weights(config)
    cached = imagenet_weights_file(config.alpha, config.image_size)
    size = config.image_size
    from_file = keras_errors(Path(weights), f"MobileNetV2 alpha {config.alpha:g} weights file") \
        if weights not in (None, "imagenet") else contextlib.nullcontext()
    try:
        with from_file, warnings.catch_warnings():  # sizes outside Keras' list use the 224 weights, by design
            warnings.simplefilter("ignore", UserWarning)
            base = keras.applications.MobileNetV2(
                input_shape=(size, size, 3), alpha=config.alpha, include_top=False, weights=weights,
                name=f"{BASE}_whole" if config.cut_at else BASE,
            )
    except Exception as exc:  # Keras' download raises a bare Exception ("URL fetch failure ...")
        if weights != "imagenet" or cached.is_file():
            raise
        instead = ("--init-blend 1 (the parent's weights alone)" if config.init_from else
                   "--weights FILE.h5, or --weights none")
        raise ConfigError(
            f"ImageNet weights could not be downloaded ({str(exc).split(':')[0]}): place "
            f"{cached.name} in {cached.parent} (or set KERAS_HOME), or pass {instead}"
        ) from None
    if config.cut_at:
        base = cut(base, config.cut_at)
    if not config.pretrained:
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    return base


def cut(base: keras.Model, layer: str) -> keras.Model:
    """The base up to ``layer``'s output (the "network cut" of Ovalle-Magallanes et al. 2020):
    earlier features are less specific to the data the base last learned from, which is what
    about a hundred patches of another site need (docs/site-adaptation.md)."""
    maps = [item.name for item in base.layers[1:] if len(item.output.shape) == 4]
    if layer not in maps:
        raise ConfigError(f"cut-at {layer!r}: no such feature map in MobileNetV2 (e.g. block_6_expand_relu, "
                          f"block_13_expand_relu, out_relu: the whole base)")
    return keras.Model(base.input, base.get_layer(layer).output, name=BASE)


def imagenet_weights_available(alpha: float, image_size: int) -> bool:
    """Whether ``--weights imagenet`` works here: Keras' cache, or a download that succeeds."""
    try:
        build_base(TrainConfig(alpha=alpha, image_size=image_size))
    except ConfigError:
        return False
    return True


def build_augmentation(config: TrainConfig) -> keras.Sequential:
    """Random flips, rotation, zoom, contrast and brightness, and another site's look
    (``site_augmentation``); each off when its factor is 0."""
    steps = []
    if config.flip:
        steps.append(layers.RandomFlip("horizontal_and_vertical", seed=config.seed))
    if config.rotation:
        steps.append(layers.RandomRotation(config.rotation, fill_mode="reflect", seed=config.seed))
    if config.zoom:
        steps.append(layers.RandomZoom(config.zoom, fill_mode="reflect", seed=config.seed))
    if config.contrast:
        steps.append(layers.RandomContrast(config.contrast, value_range=(0, 255), seed=config.seed))
    if config.brightness:
        steps.append(layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=config.seed))
    if config.site_augmentation:
        steps.append(SiteAugmentation(config.site_augmentation, seed=config.seed, name="site"))
    return keras.Sequential(steps or [layers.Identity()], name=AUGMENTATION)  # Keras refuses an empty Sequential


def build_model(n_classes: int, config: TrainConfig) -> keras.Model:
    """The full training model (augmentation included), base frozen for stage 1."""
    size = config.image_size
    base = build_base(config)
    inputs = keras.Input((size, size, 3), name="image")
    x = build_augmentation(config)(inputs)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name=RESCALE)(x)
    # pretrained: BatchNorm keeps its ImageNet statistics; from scratch: it learns them
    x = base(x, training=False) if config.pretrained else base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    outputs = layers.Dense(  # float32 whatever the policy: softmax in float16 loses the small probabilities
        n_classes, activation="softmax", kernel_regularizer=keras.regularizers.l2(config.l2), name="classifier",
        dtype="float32",
    )(x)
    model = keras.Model(inputs, outputs, name="artery_edge_mobilenetv2")
    set_stage(model, 1, pretrained=config.pretrained)
    return model


def base_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BASE)


def set_stage(model: keras.Model, stage: int, fine_tune_at: int = 0, pretrained: bool = True) -> None:
    """Stage 1: base frozen. Stage 2: base layers from ``fine_tune_at`` on trainable,
    BatchNorm layers frozen (and, through ``training=False``, in inference mode).
    Not ``pretrained``: every layer trains in both stages (a random base is no feature extractor).
    The caller must recompile afterwards for the change to take effect."""
    base = base_of(model)
    if not pretrained:
        base.trainable = True
        return
    if stage == 1:
        base.trainable = False
        return
    base.trainable = True
    for index, layer in enumerate(base.layers):
        is_bn = isinstance(layer, layers.BatchNormalization)
        layer.trainable = index >= fine_tune_at and not is_bn


def learning_rate_schedule(peak: float, epochs: int, steps_per_epoch: int, config: TrainConfig):
    """``constant``: ``peak`` throughout. ``cosine``: linear warm-up from 0 over
    ``warmup_epochs``, then cosine decay to 0 at the stage's last step."""
    if config.schedule == "constant":
        return peak
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch))
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(peak, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=peak, warmup_steps=warmup)


@keras.saving.register_keras_serializable(package="artery_edge")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels with label smoothing (Keras' sparse loss has none); labels
    that are already (batch, n_classes) distributions (distillation's targets) are used as they are."""

    def __init__(self, smoothing: float = 0.0, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        if len(y_true.shape) == 2 and y_true.shape[-1] == y_pred.shape[-1] and y_true.shape[-1] != 1:
            targets = ops.cast(y_true, y_pred.dtype)
        else:
            targets = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


def compile_model(model: keras.Model, learning_rate, config: TrainConfig | None = None) -> None:
    """Adam (a float rate or a schedule) + cross-entropy, label-smoothed if asked. No XLA: Keras
    refuses to jit-compile the augmentation layers in the graph (docs/experiments.md). Under a
    mixed-float16 policy Keras 3 scales the loss itself (LossScaleOptimizer)."""
    config = config or TrainConfig()
    loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing or config.teachers
            else keras.losses.SparseCategoricalCrossentropy())
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
    )


def serving_model(model: keras.Model, temperature: float = 1.0, logits: bool = False) -> keras.Model:
    """The inference graph: the trained layers without augmentation, always float32 (a model
    trained under ``mixed_float16`` is rebuilt with float32 layers and the same weights).

    The classifier's softmax is split out so the calibration temperature sits between the
    logits and it: softmax(logits / T). ``logits=True`` stops at the logits (for fitting T).
    """
    size = model.input_shape[1]
    inputs = keras.Input((size, size, 3), name="image")
    x = model.get_layer(RESCALE)(inputs)
    x = base_of(model)(x, training=False)
    for name in ("pool", "dropout"):
        x = model.get_layer(name)(x)
    trained = model.get_layer("classifier")
    linear = layers.Dense(trained.units, name="logits", dtype="float32")
    x = linear(x)
    linear.set_weights(trained.get_weights())
    if not logits:
        x = layers.Rescaling(1.0 / temperature, name="temperature", dtype="float32")(x)
        x = layers.Softmax(name="probabilities", dtype="float32")(x)
    serving = keras.Model(inputs, x, name=model.name + "_serving")
    return serving if is_float32(serving) else float32_twin(serving)


def is_float32(model: keras.Model) -> bool:
    return all(layer.dtype_policy.name == "float32" for layer in model._flatten_layers())


def float32_twin(model: keras.Model) -> keras.Model:
    """The same architecture with every layer's dtype policy float32, and the same weights
    (mixed-precision variables are float32 already, so nothing is rounded)."""

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in node:
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {key: to_float32(value) for key, value in node.items()}
        if isinstance(node, list):
            return [to_float32(value) for value in node]
        return "float32" if node == "mixed_float16" or node == "mixed_bfloat16" else node

    twin = keras.Model.from_config(to_float32(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin
