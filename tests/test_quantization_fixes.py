"""BatchNorm folding, data-chosen int8 weights and float32 exceptions in float16 models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import flatbuffers  # noqa: E402
import keras  # noqa: E402

from converters.bn_folding import fold_batchnorm  # noqa: E402
from converters.float16_exceptions import restore_small_weights  # noqa: E402
from converters.metadata_writer import embed_metadata  # noqa: E402
from converters.weight_rounding import QMAX, OutputCurvature, choose_integers, round_model, weighted_layers  # noqa: E402
from edge import Classifier, read_metadata  # noqa: E402
from edge.metadata import TFLITE_IDENTIFIER, load_schema  # noqa: E402
from evaluation.evaluate import tflite_probabilities  # noqa: E402
from trainer.data import scan_dataset  # noqa: E402


def tiny_mobilenet(seed: int = 0) -> keras.Model:
    """MobileNetV2 (random weights) with BatchNorm statistics far from identity, as after training."""
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.1, 3, variance.shape)])
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def images(count: int, seed: int = 1) -> np.ndarray:
    """Smooth random images in [-1, 1]: neighbouring pixels correlate, as in real ones."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (count, 8, 8, 3)).astype(np.float32)
    return np.asarray(keras.ops.image.resize(coarse, (32, 32), interpolation="bilinear"))


def test_folding_keeps_the_function_and_removes_batchnorm():
    model = tiny_mobilenet()
    folded = fold_batchnorm(model)
    x = images(8)
    assert np.abs(folded.predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5
    nested = [layer for layer in folded.layers if isinstance(layer, keras.Model)][0]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in nested.layers)
    assert len(weighted_layers(folded)) == 53  # 52 convolutions + the classifier, all with a bias now


def test_chosen_integers_beat_nearest_rounding_on_correlated_inputs():
    rng = np.random.default_rng(0)
    common = rng.normal(size=(5000, 1))
    inputs = common + 0.05 * rng.normal(size=(5000, 9))  # nine nearly equal taps, like a smooth patch
    shared = np.cov(inputs.T)[np.newaxis]
    weights = rng.normal(0, 20, (16, 9))
    q, scale = choose_integers(weights, OutputCurvature(shared, np.zeros(16, dtype=int)))
    per_output, _ = choose_integers(weights, OutputCurvature(shared.repeat(16, axis=0), np.arange(16)))
    assert np.array_equal(q, per_output)  # shared storage, same answer
    nearest = np.round(weights / scale[:, None])

    def output_error(integers):
        error = integers * scale[:, None] - weights
        return np.einsum("ok,kl,ol->o", error, shared[0], error)

    assert np.all(output_error(q) <= output_error(nearest) + 1e-12)
    assert output_error(q).sum() < 0.5 * output_error(nearest).sum()
    assert np.all(np.abs(q) <= QMAX) and np.all(np.abs(q).max(axis=1) == QMAX)  # same scale for the converter
    assert np.array_equal(q, np.round(q))


def test_rounded_model_sits_on_the_int8_grid_and_stays_close():
    folded = fold_batchnorm(tiny_mobilenet())
    x = images(16)
    before = folded.predict(x, verbose=0)
    results = round_model(folded, x)
    assert len(results) == 53 and all(r.error_chosen <= r.error_nearest + 1e-12 for r in results)
    for layer in weighted_layers(folded):
        kernel = layer.get_weights()[0]
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        matrix = kernel.reshape(-1, kernel.shape[2] * kernel.shape[3]) if depthwise else kernel.reshape(-1, kernel.shape[-1])
        scale = np.abs(matrix).max(axis=0) / QMAX
        steps = matrix / np.where(scale == 0, 1, scale)
        assert np.abs(steps - np.round(steps)).max() < 1e-3, layer.name
    assert np.abs(folded.predict(x, verbose=0) - before).max() < 0.05


def test_calibrated_rounding_brings_int8_closer_to_keras(converted_run, synthetic_dir, tmp_path):
    from converters.tflite import convert

    run, models = converted_run
    nearest = Path(convert(run.run_dir, ["int8"], out_dir=tmp_path, representative_count=40,
                           weight_rounding="nearest")[0].path)
    assert read_metadata(models["int8"]).quantization["weight_rounding"] == "calibrated"
    assert read_metadata(nearest).quantization["weight_rounding"] == "nearest"
    samples = scan_dataset(synthetic_dir).samples
    reference = tflite_probabilities(Classifier(models["float32"]), samples)
    gap = {name: np.abs(tflite_probabilities(Classifier(path), samples) - reference).mean()
           for name, path in (("calibrated", models["int8"]), ("nearest", nearest))}
    print(f"int8 mean |dp| vs float32: {gap}")
    assert gap["calibrated"] < gap["nearest"]


def dequantize_count(model: bytes) -> int:
    schema = load_schema()
    graph = schema.Model.GetRootAs(model, 0)
    codes = [max(graph.OperatorCodes(i).BuiltinCode(), graph.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(graph.OperatorCodesLength())]
    ops = graph.Subgraphs(0)
    return sum(codes[ops.Operators(i).OpcodeIndex()] == schema.BuiltinOperator.DEQUANTIZE
               for i in range(ops.OperatorsLength()))


def test_float16_keeps_small_weights_in_float32(converted_run):
    _, models = converted_run
    metadata = read_metadata(models["float16"]).quantization
    assert metadata["float32_weights_below_elements"] == 1024 and metadata["float32_tensors"] > 0
    half, full = models["float16"].read_bytes(), models["float32"].read_bytes()
    assert 0 < dequantize_count(half) and len(half) < 0.6 * len(full)

    restored, count = restore_small_weights(half, full, max_elements=10**9)  # everything back to float32
    assert count > 0 and dequantize_count(restored) == 0
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    restored_path = models["float16"].parent / "restored.tflite.tmp"
    restored_path.write_bytes(embed_metadata(restored, read_metadata(models["float16"])))  # new weights, new checksum
    try:
        p_restored = Classifier(restored_path).predict(image).probabilities
    finally:
        restored_path.unlink()
    p_full = Classifier(models["float32"]).predict(image).probabilities
    assert max(abs(p_restored[k] - p_full[k]) for k in p_full) < 1e-6


def test_float16_rewrite_restores_nothing_from_a_float32_model_of_another_graph(converted_run):
    """Originals are matched by content: another graph's float32 file matches no tensor, and the
    float16 file comes back unchanged instead of failing the conversion."""
    import tensorflow as tf

    _, models = converted_run
    other = tf.lite.TFLiteConverter.from_keras_model(tiny_mobilenet()).convert()
    half = models["float16"].read_bytes()
    assert restore_small_weights(half, other, max_elements=10**9) == (half, 0)


def test_float16_rewrite_ignores_constant_names(converted_run):
    """Renaming every float32 constant (as another conversion's MLIR numbering does) changes nothing."""
    _, models = converted_run
    schema = load_schema()
    full = schema.ModelT.InitFromPackedBuf(bytearray(models["float32"].read_bytes()), 0)
    for i, tensor in enumerate(full.subgraphs[0].tensors):
        tensor.name = f"arith.constant{i}".encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(full.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    renamed = bytes(builder.Output())
    half = models["float16"].read_bytes()
    restored, count = restore_small_weights(half, renamed, max_elements=10**9)
    assert count > 0 and restored == restore_small_weights(half, models["float32"].read_bytes(), 10**9)[0]


def test_converter_keeps_the_chosen_int8_weights_exactly(converted_run):
    """The int8 file holds exactly the integers and scales chosen in Keras (depthwise layers)."""
    from ai_edge_litert.interpreter import Interpreter

    from converters.tflite import ConversionSource, build_representative_images, load_keras_model

    run, models = converted_run
    source = ConversionSource.resolve(run.run_dir)
    folded = fold_batchnorm(load_keras_model(source.model_path))
    round_model(folded, build_representative_images(source, 40, 48))  # as converted_run did
    interpreter = Interpreter(model_path=str(models["int8"]))
    interpreter.allocate_tensors()
    tensors = interpreter.get_tensor_details()
    checked = 0
    for layer in weighted_layers(folded):
        if not isinstance(layer, keras.layers.DepthwiseConv2D):
            continue
        kernel = layer.get_weights()[0][..., 0]  # (3, 3, C)
        found = [t for t in tensors if f"/{layer.name}_1/" in t["name"] and t["dtype"] == np.int8
                 and tuple(t["shape_signature"]) == (1, *kernel.shape)]  # activations have a -1 batch
        assert len(found) == 1, layer.name
        scale = np.abs(kernel).max(axis=(0, 1)) / QMAX
        assert np.allclose(found[0]["quantization_parameters"]["scales"], scale, rtol=1e-5), layer.name
        assert np.array_equal(interpreter.get_tensor(found[0]["index"])[0], np.round(kernel / scale)), layer.name
        checked += 1
    assert checked == 17


def test_folding_keeps_the_weights_of_a_nested_sequential():
    inputs = keras.Input((8, 8, 3))
    head = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()])
    model = keras.Model(inputs, head(inputs))
    head.layers[1].set_weights([np.full(4, 2.0), np.ones(4), np.zeros(4), np.ones(4)])
    x = images(2)[:, :8, :8]
    assert np.abs(fold_batchnorm(model).predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5


def test_every_file_runs_through_its_signature(converted_run):
    """The float16 rewrite renumbers tensors: the signature (what LiteRT's signature runner and
    AI Edge Quantizer call) must still name the right ones, and give what the graph outputs."""
    from ai_edge_litert.interpreter import Interpreter

    run, models = converted_run
    for precision, path in models.items():
        signed = Interpreter(model_path=str(path))
        (key, signature), = signed.get_signature_list().items()
        detail = signed.get_input_details()[0]
        image = np.full(detail["shape"][1:], 100, dtype=detail["dtype"])
        runner = signed.get_signature_runner(key)
        from_signature = np.array(next(iter(runner(**{signature["inputs"][0]: image[np.newaxis]}).values())))
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], image[np.newaxis])
        interpreter.invoke()
        np.testing.assert_array_equal(from_signature, interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
