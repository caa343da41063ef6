"""Build tiny TFLite classifiers from the flatbuffer schema alone (no TensorFlow).

The graph is: image -> [DEQUANTIZE] -> MEAN over H, W -> FULLY_CONNECTED -> SOFTMAX
-> [QUANTIZE], so the expected probabilities are easy to compute in NumPy and the edge
tests can exercise uint8, int8 and float32 inputs in an environment without TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import flatbuffers
import numpy as np

from edge.metadata import TFLITE_IDENTIFIER, ModelMetadata
from edge.metadata import load_schema

WEIGHTS = np.array([[0.03, 0.0, -0.01], [-0.01, 0.0, 0.03]], dtype=np.float32)
BIAS = np.array([0.1, -0.1], dtype=np.float32)
# Quantization of the image input: scale 1 so every raw pixel is exact.
INPUT_QUANT = {"uint8": (1.0, 0), "int8": (1.0, -128)}
OUTPUT_QUANT = {"uint8": (1.0 / 256, 0), "int8": (1.0 / 256, -128)}


def expected_probabilities(pixels: np.ndarray) -> np.ndarray:
    """What the tiny model computes for uint8 (H, W, 3) pixels."""
    logits = WEIGHTS @ pixels.reshape(-1, 3).astype(np.float64).mean(axis=0) + BIAS
    e = np.exp(logits - logits.max())
    return e / e.sum()


def build_tiny_classifier(
    path: Path,
    input_dtype: str = "float32",
    size: int = 8,
    metadata: Optional[ModelMetadata] = None,
    input_shape: Optional[Sequence[int]] = None,
    n_inputs: int = 1,
    bias: np.ndarray = BIAS,
) -> Path:
    """Write a tiny classifier .tflite to ``path`` (optionally with artery-edge metadata)."""
    s = load_schema()
    types = {"float32": s.TensorType.FLOAT32, "uint8": s.TensorType.UINT8, "int8": s.TensorType.INT8}
    buffers = [s.BufferT()]
    tensors: list = []

    def tensor(shape, dtype="float32", data=None, quant=None, name="t"):
        t = s.TensorT()
        t.shape = list(shape)
        t.type = types[dtype] if dtype in types else s.TensorType.INT32
        t.name = name
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            buffers.append(b)
            t.buffer = len(buffers) - 1
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    codes: list[int] = []
    operators = []

    def op(code, inputs, outputs, options_type=0, options=None):
        if code not in codes:
            codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes.index(code), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        operators.append(o)

    shape = list(input_shape or (1, size, size, 3))
    quantized = input_dtype != "float32"
    image = tensor(shape, input_dtype, quant=INPUT_QUANT.get(input_dtype), name="image")
    inputs = [image] + [tensor(shape, input_dtype, quant=INPUT_QUANT.get(input_dtype), name=f"extra{i}") for i in range(1, n_inputs)]
    x = image
    if quantized:
        x = tensor(shape, name="dequantized")
        op(s.BuiltinOperator.DEQUANTIZE, [image], [x])
    axes = tensor([2], "int32", np.array([1, 2], dtype=np.int32), name="axes")
    mean = tensor([1, 3], name="mean")
    reducer = s.ReducerOptionsT()
    reducer.keepDims = False
    op(s.BuiltinOperator.MEAN, [x, axes], [mean], s.BuiltinOptions.ReducerOptions, reducer)
    weights = tensor([2, 3], data=WEIGHTS, name="weights")
    bias = tensor([2], data=np.asarray(bias, dtype=np.float32), name="bias")
    logits = tensor([1, 2], name="logits")
    op(s.BuiltinOperator.FULLY_CONNECTED, [mean, weights, bias], [logits],
       s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT())
    probs = tensor([1, 2], name="probabilities")
    softmax = s.SoftmaxOptionsT()
    softmax.beta = 1.0
    op(s.BuiltinOperator.SOFTMAX, [logits], [probs], s.BuiltinOptions.SoftmaxOptions, softmax)
    output = probs
    if quantized:
        output = tensor([1, 2], input_dtype, quant=OUTPUT_QUANT[input_dtype], name="output")
        op(s.BuiltinOperator.QUANTIZE, [probs], [output])

    subgraph = s.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = tensors, inputs, [output], operators
    subgraph.name = "main"
    model = s.ModelT()
    model.version = 3
    model.description = "tiny test classifier"
    model.subgraphs, model.buffers = [subgraph], buffers
    model.operatorCodes = []
    for code in codes:
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
        model.operatorCodes.append(c)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    data = bytes(builder.Output())
    if metadata is not None:
        from converters.metadata_writer import embed_metadata

        data = embed_metadata(data, metadata)
    Path(path).write_bytes(data)
    return Path(path)
