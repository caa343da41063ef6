"""converters.float16_keep: float16 models keep their few small, sensitive weights in float32,
matched by content; every rewritten file still runs through its signature."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

import flatbuffers  # noqa: E402

from artery_edge.converters.float16_keep import restore_small_weights  # noqa: E402
from artery_edge.converters.metadata_writer import embed_metadata  # noqa: E402
from artery_edge.edge import Classifier, read_metadata  # noqa: E402
from artery_edge.edge.metadata import TFLITE_IDENTIFIER, load_schema  # noqa: E402
from tests.keras_builder import tiny_mobilenet  # noqa: E402


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
