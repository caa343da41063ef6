"""The whole-frame model: MobileNetV2 encoder, a light U-Net decoder, a stenosis probability map.

raw RGB 0..255 -> Rescaling to [-1, 1] -> MobileNetV2 (ImageNet; called with ``training=False``,
so its BatchNorm keeps ImageNet's moving statistics: Keras ships momentum 0.999, and with a
few hundred steps the statistics would stay ImageNet's while the layers learn, which made
inference collapse in the first prototype) -> skips at strides 2, 4, 8, 16 and the stride-32
features -> per level: bilinear up-sampling, concatenation, a separable 3 x 3 convolution
(BatchNorm momentum 0.9, ReLU) -> 1 x 1 logits at stride 2 -> bilinear to the input size ->
sigmoid: p(stenosis) per pixel. The shape of Keras' own segmentation example (pix2pix decoder
over MobileNetV2 skips), with separable convolutions to stay light on a CPU.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from artery_edge.trainer.config import TrainConfig
from artery_edge.trainer.model import build_base

SKIPS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu")
DEEPEST = "block_16_project"
DECODER_FILTERS = (96, 64, 48, 32)  # stride 16, 8, 4, 2
DECODER_BN_MOMENTUM = 0.9
ENCODER = "encoder"
OUTPUT = "lesion_map"


def encoder_features(config: TrainConfig) -> tuple:
    """The model's input, the encoder's skips (strides 2, 4, 8, 16) and its stride-32 features:
    what every whole-frame head shares (the map here, the centre head of trainer.center_head)."""
    base = build_base(config)
    encoder = keras.Model(base.input, [base.get_layer(name).output for name in SKIPS] +
                          [base.get_layer(DEEPEST).output], name=ENCODER)
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    # pretrained: BatchNorm keeps ImageNet's statistics; from scratch it must learn its own (momentum
    # 0.9, set by build_base), so it follows the learning phase
    *skips, x = encoder(x, training=False if config.pretrained else None)
    return inputs, skips, x


def decoder_level(x, skip, filters: int):
    """One level of the decoder: up-sample by 2, join the encoder's skip, a separable 3 x 3 convolution."""
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = layers.Concatenate()([x, skip])
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=DECODER_BN_MOMENTUM)(x)
    return layers.ReLU()(x)


def build_frame_model(config: TrainConfig) -> keras.Model:
    """The map model for ``config.image_size`` (a multiple of 32) and ``config.alpha``."""
    inputs, skips, x = encoder_features(config)
    for skip, filters in zip(reversed(skips), DECODER_FILTERS):
        x = decoder_level(x, skip, filters)
    logits = layers.Conv2D(1, 1, name="logits")(x)
    logits = layers.UpSampling2D(2, interpolation="bilinear")(logits)
    outputs = layers.Activation("sigmoid", dtype="float32", name=OUTPUT)(logits)
    return keras.Model(inputs, outputs, name="frame_map")


def set_encoder_trainable(model: keras.Model, trainable: bool) -> None:
    """Stage 1 trains the decoder on a frozen encoder; stage 2 fine-tunes both (BatchNorm of the
    encoder stays in inference mode either way: see the module's docstring)."""
    model.get_layer(ENCODER).trainable = trainable


@keras.saving.register_keras_serializable(package="artery_edge")
def map_loss(y_true, y_pred):
    """Binary cross-entropy + soft Dice (over the batch): cross-entropy alone drowns the ~1 % of
    lesion pixels in background; Dice weighs the lesion's overlap whatever its size."""
    y_true = ops.cast(y_true, y_pred.dtype)
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    overlap = ops.sum(y_true * y_pred)
    dice = (2.0 * overlap + 1.0) / (ops.sum(y_true) + ops.sum(y_pred) + 1.0)
    return bce + (1.0 - dice)
