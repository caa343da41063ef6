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

from artery_edge.edge.metadata import TFLITE_IDENTIFIER, ModelMetadata
from artery_edge.edge.metadata import load_schema

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


class Graph:
    """A one-subgraph TFLite model under construction: tensors, operators, packed buffers."""

    def __init__(self) -> None:
        self.s = load_schema()
        self.types = {"float32": self.s.TensorType.FLOAT32, "uint8": self.s.TensorType.UINT8,
                      "int8": self.s.TensorType.INT8}
        self.buffers = [self.s.BufferT()]
        self.tensors: list = []
        self.codes: list[int] = []
        self.operators: list = []

    def tensor(self, shape, dtype="float32", data=None, quant=None, name="t") -> int:
        s = self.s
        t = s.TensorT()
        t.shape = list(shape)
        t.type = self.types[dtype] if dtype in self.types else s.TensorType.INT32
        t.name = name
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code, inputs, outputs, options_type=0, options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        o = self.s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.operators.append(o)

    def write(self, path: Path, inputs: list[int], outputs: list[int], description: str,
              metadata: Optional[ModelMetadata]) -> Path:
        s = self.s
        subgraph = s.SubGraphT()
        subgraph.tensors, subgraph.inputs, subgraph.outputs = self.tensors, inputs, outputs
        subgraph.operators, subgraph.name = self.operators, "main"
        model = s.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs, model.buffers = [subgraph], self.buffers
        model.operatorCodes = []
        for code in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            model.operatorCodes.append(c)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
        data = bytes(builder.Output())
        if metadata is not None:
            from artery_edge.converters.metadata_writer import embed_metadata

            data = embed_metadata(data, metadata)
        Path(path).write_bytes(data)
        return Path(path)


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
    g = Graph()
    s = g.s
    shape = list(input_shape or (1, size, size, 3))
    quantized = input_dtype != "float32"
    image = g.tensor(shape, input_dtype, quant=INPUT_QUANT.get(input_dtype), name="image")
    inputs = [image] + [g.tensor(shape, input_dtype, quant=INPUT_QUANT.get(input_dtype), name=f"extra{i}")
                        for i in range(1, n_inputs)]
    x = image
    if quantized:
        x = g.tensor(shape, name="dequantized")
        g.op(s.BuiltinOperator.DEQUANTIZE, [image], [x])
    axes = g.tensor([2], "int32", np.array([1, 2], dtype=np.int32), name="axes")
    mean = g.tensor([1, 3], name="mean")
    reducer = s.ReducerOptionsT()
    reducer.keepDims = False
    g.op(s.BuiltinOperator.MEAN, [x, axes], [mean], s.BuiltinOptions.ReducerOptions, reducer)
    weights = g.tensor([2, 3], data=WEIGHTS, name="weights")
    bias = g.tensor([2], data=np.asarray(bias, dtype=np.float32), name="bias")
    logits = g.tensor([1, 2], name="logits")
    g.op(s.BuiltinOperator.FULLY_CONNECTED, [mean, weights, bias], [logits],
         s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT())
    probs = g.tensor([1, 2], name="probabilities")
    softmax = s.SoftmaxOptionsT()
    softmax.beta = 1.0
    g.op(s.BuiltinOperator.SOFTMAX, [logits], [probs], s.BuiltinOptions.SoftmaxOptions, softmax)
    output = probs
    if quantized:
        output = g.tensor([1, 2], input_dtype, quant=OUTPUT_QUANT[input_dtype], name="output")
        g.op(s.BuiltinOperator.QUANTIZE, [probs], [output])
    return g.write(path, inputs, [output], "tiny test classifier", metadata)


# The tiny whole-frame model: p(stenosis) = sigmoid(MAP_SLOPE * grey + MAP_OFFSET) per pixel,
# so dark blobs on a bright frame are "lesions" (tests draw them and know where they are).
MAP_SLOPE, MAP_OFFSET = -0.05, 5.0


def expected_map(pixels: np.ndarray) -> np.ndarray:
    """What the tiny map model computes for uint8 (H, W, 3) pixels: (H, W)."""
    grey = pixels.astype(np.float64).mean(axis=-1)
    return 1 / (1 + np.exp(-(MAP_SLOPE * grey + MAP_OFFSET)))


def build_tiny_map_model(path: Path, size: int = 32, input_dtype: str = "float32",
                         metadata: Optional[ModelMetadata] = None) -> Path:
    """Write a tiny whole-frame .tflite: (1, S, S, 3) image -> (1, S, S, 1) probability map."""
    g = Graph()
    s = g.s
    quantized = input_dtype != "float32"
    image = g.tensor([1, size, size, 3], input_dtype, quant=INPUT_QUANT.get(input_dtype), name="image")
    x = image
    if quantized:
        x = g.tensor([1, size, size, 3], name="dequantized")
        g.op(s.BuiltinOperator.DEQUANTIZE, [image], [x])
    axes = g.tensor([1], "int32", np.array([3], dtype=np.int32), name="axes")
    grey = g.tensor([1, size, size, 1], name="grey")
    reducer = s.ReducerOptionsT()
    reducer.keepDims = True
    g.op(s.BuiltinOperator.MEAN, [x, axes], [grey], s.BuiltinOptions.ReducerOptions, reducer)
    scaled = g.tensor([1, size, size, 1], name="scaled")
    g.op(s.BuiltinOperator.MUL, [grey, g.tensor([1], data=np.array([MAP_SLOPE], np.float32), name="slope")],
         [scaled], s.BuiltinOptions.MulOptions, s.MulOptionsT())
    shifted = g.tensor([1, size, size, 1], name="shifted")
    g.op(s.BuiltinOperator.ADD, [scaled, g.tensor([1], data=np.array([MAP_OFFSET], np.float32), name="offset")],
         [shifted], s.BuiltinOptions.AddOptions, s.AddOptionsT())
    probability = g.tensor([1, size, size, 1], name="lesion_map")
    g.op(s.BuiltinOperator.LOGISTIC, [shifted], [probability])
    output = probability
    if quantized:
        output = g.tensor([1, size, size, 1], input_dtype, quant=OUTPUT_QUANT[input_dtype], name="output")
        g.op(s.BuiltinOperator.QUANTIZE, [probability], [output])
    return g.write(path, [image], [output], "tiny test whole-frame model", metadata)
