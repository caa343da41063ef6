"""Keep the few float16-sensitive weights of a float16 .tflite model in float32.

The converter's float16 mode stores every constant as float16 behind a DEQUANTIZE op.
In an ImageNet MobileNetV2, nearly all of the resulting output error comes from the
smallest layers at the stem: BatchNorm folding gives them large kernels (up to 56 in
``expanded_conv_depthwise``) whose terms cancel on smooth images, so float16's 2^-11
relative rounding is amplified. Measured on the 128 px run: that one 288-weight layer
caused 90% of the logit error. TFLite's own dynamic-range quantizer leaves weights under
1,024 elements in float for the same reason; this does the same for float16, taking the
original values from the float32 conversion of the same graph, at a cost of a few KB.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from artery_edge.edge.metadata import TFLITE_IDENTIFIER, load_schema

SMALL_WEIGHT_ELEMENTS = 1024


def _unpack(model_bytes: bytes):
    return load_schema().ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)


def _float32_originals(model) -> dict[tuple, np.ndarray]:
    """(shape, float16 bytes) -> raw float32 bytes of each float32 constant of the main subgraph.

    Matched by content, not by name: the converter's constant names (``arith.constant9``)
    differ between two conversions of the same graph. A key whose float32 values are
    ambiguous (two different originals round to the same float16 tensor) maps to None.
    """
    schema = load_schema()
    originals: dict[tuple, np.ndarray] = {}
    for tensor in model.subgraphs[0].tensors:
        data = model.buffers[tensor.buffer].data
        if tensor.type != schema.TensorType.FLOAT32 or data is None or not len(data):
            continue
        full = np.asarray(data, dtype=np.uint8)
        key = (tuple(tensor.shape), full.view(np.float32).astype(np.float16).tobytes())
        if key in originals and originals[key] is not None and not np.array_equal(originals[key], full):
            originals[key] = None
        else:
            originals.setdefault(key, full)
    return originals


def _dequantize_ops(model) -> dict[int, int]:
    """Output tensor index -> operator index of every DEQUANTIZE op."""
    schema = load_schema()
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return {
        op.outputs[0]: index
        for index, op in enumerate(model.subgraphs[0].operators)
        if codes[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE
    }


def _ops_to_restore(model, dequantized: dict[int, int], max_elements: int) -> set[int]:
    """DEQUANTIZE ops feeding an op whose largest float16 weight has fewer than ``max_elements``."""
    graph = model.subgraphs[0]
    chosen: set[int] = set()
    for op in graph.operators:
        feeding = [dequantized[i] for i in op.inputs if i in dequantized]
        if not feeding:
            continue
        largest = max(int(np.prod(graph.tensors[graph.operators[d].inputs[0]].shape)) for d in feeding)
        if largest < max_elements:
            chosen.update(feeding)
    return chosen


def restore_small_weights(float16_model: bytes, float32_model: bytes, max_elements: int = SMALL_WEIGHT_ELEMENTS) -> tuple[bytes, int]:
    """``float16_model`` with the weights of small ops back in float32; also how many tensors.

    A float16 tensor with no unambiguous float32 original stays float16: the result is
    always a valid model, at worst the converter's own float16 file.
    """
    schema = load_schema()
    model = _unpack(float16_model)
    originals = _float32_originals(_unpack(float32_model))
    graph = model.subgraphs[0]
    restored: set[int] = set()
    for op_index in _ops_to_restore(model, _dequantize_ops(model), max_elements):
        op = graph.operators[op_index]
        half, full = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        half_bytes = np.asarray(model.buffers[half.buffer].data, dtype=np.uint8).tobytes()
        original = originals.get((tuple(half.shape), half_bytes))
        if original is None:
            continue
        buffer = schema.BufferT()
        buffer.data = original
        model.buffers.append(buffer)
        full.buffer = len(model.buffers) - 1
        restored.add(op_index)
    if not restored:
        return float16_model, 0
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in restored]
    _drop_unused_constants(model)
    builder = flatbuffers.Builder(2 * len(float16_model))  # grows if needed
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output()), len(restored)


def _drop_unused_constants(model) -> None:
    """Remove constant tensors no op reads any more, empty their buffers, renumber the rest."""
    graph = model.subgraphs[0]
    used = {i for op in graph.operators for i in list(op.inputs) + list(op.outputs)}
    used |= set(graph.inputs) | set(graph.outputs)
    dropped = {i for i, t in enumerate(graph.tensors) if i not in used and model.buffers[t.buffer].data is not None}
    kept_buffers = {t.buffer for i, t in enumerate(graph.tensors) if i not in dropped}
    for index in dropped:
        if graph.tensors[index].buffer not in kept_buffers:
            model.buffers[graph.tensors[index].buffer].data = None
    new_index = {}
    kept = []
    for old, tensor in enumerate(graph.tensors):
        if old not in dropped:
            new_index[old] = len(kept)
            kept.append(tensor)
    graph.tensors = kept

    def renumber(indices):
        return [new_index[i] if i >= 0 else i for i in indices]

    for op in graph.operators:
        op.inputs = renumber(op.inputs)
        op.outputs = renumber(op.outputs)
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = renumber(op.intermediates)
    graph.inputs = renumber(graph.inputs)
    graph.outputs = renumber(graph.outputs)
    for signature in model.signatureDefs or []:  # the signature runner finds its tensors by index
        for entry in list(signature.inputs or []) + list(signature.outputs or []):
            entry.tensorIndex = new_index[entry.tensorIndex]
