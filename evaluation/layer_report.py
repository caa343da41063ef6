"""Where a quantized model loses accuracy: every tensor it shares with its float32 twin,
compared on a few real images (signal-to-noise ratio and cosine similarity), worst first.

The per-tensor comparison is LiteRT Quantizer's numerical validation (TF-free); this module
picks the images, names the layers and writes Markdown and a bar chart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from artery_edge.edge.atomic import new_folder
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.metadata import read_metadata
from artery_edge.edge.precisions import FLOAT_REFERENCE, PRECISIONS
from artery_edge.edge.provenance import RunIdentity, check_tflite, check_twin
from artery_edge.edge.text import literal_figures, markdown, markdown_code
from artery_edge.evaluation.formatting import number

SHOWN = 25  # layers in the chart
QUANTIZE_HINT = 'the per-layer report needs LiteRT Quantizer: pip install "artery-edge[quantize]"'


class ReportError(ArteryEdgeError):
    """The report cannot be made (a float model, a missing twin, no images)."""


def layer_name(tensor: str) -> str:
    """``model_serving_1/mobilenetv2_1/block_3_expand_relu_1/Relu6;...`` -> ``block_3_expand_relu_1/Relu6``."""
    parts = tensor.split(";")[0].split("/")
    while len(parts) > 2 and (parts[0].endswith("_serving_1") or parts[0].startswith("mobilenetv2")):
        parts = parts[1:]
    return "/".join(parts)


def check_pair(quantized: Path, reference: Path) -> None:
    """A float32 model compared with itself says nothing: refused, as is a missing twin, a
    reference that is not float32 and one converted from another Keras model (``edge.provenance``)."""
    if not Path(quantized).is_file():
        raise ReportError(f"{quantized}: no such model file")
    metadata = read_metadata(quantized)
    if metadata is not None and metadata.precision == FLOAT_REFERENCE.name:
        raise ReportError(f"{quantized} is a {FLOAT_REFERENCE.name} model: the report compares a quantized model "
                          f"({', '.join(p for p in PRECISIONS if p != FLOAT_REFERENCE.name)}) with its "
                          f"{FLOAT_REFERENCE.name} twin")
    if not Path(reference).is_file():
        raise ReportError(f"no float32 twin at {reference} (convert with --quantize float32, or pass --reference)")
    if Path(quantized).resolve() == Path(reference).resolve():
        raise ReportError(f"--reference {reference} is {quantized} itself: the report compares a quantized model "
                          f"with its {FLOAT_REFERENCE.name} twin")
    reference_metadata = read_metadata(reference)
    check_twin(Path(quantized), metadata, Path(reference), reference_metadata)
    if reference_metadata.precision != FLOAT_REFERENCE.name:
        raise ReportError(f"{reference} is a {reference_metadata.precision} model, not the {FLOAT_REFERENCE.name} twin")


def report_images(model: Path, data: Path | None, count: int, seed: int = 0) -> np.ndarray:
    """``count`` images at the model's input size: from ``data`` (class folders or a flat
    folder), else from the training split of the run the model sits in."""
    from artery_edge.edge.classifier import Classifier
    from artery_edge.edge.imaging import iter_image_files, load_image

    size = Classifier(model).input_size
    if data is not None:
        if not Path(data).is_dir():
            raise ReportError(f"--data {data} is not a folder")
        files = sorted(iter_image_files(Path(data), []))
    else:
        from artery_edge.trainer.runs import load_run
        from artery_edge.trainer.samples import DataError, subset

        try:
            run = load_run(Path(model).parent)
            check_tflite(Path(model), read_metadata(model), RunIdentity.of(run))  # images of its own run only
            files = [s.path for s in subset(run.split(), "train")]
        except (DataError, ArteryEdgeError) as exc:
            raise ReportError(f"pass --data DIR: {exc}") from None
    if not files:
        raise ReportError(f"no images in {data}")
    chosen = [files[i] for i in sorted(np.random.default_rng(seed).permutation(len(files))[:count])]
    return np.stack([load_image(f, size) for f in chosen])


def short_activation_names(model) -> None:
    """Name each layer output by its first fused name (``block_1_expand_relu_1/Relu6;<bn>;<conv>``
    -> ``block_1_expand_relu_1/Relu6``): the int8 path folds BatchNorm first, so the fused
    names differ between the two files while the activation is the same."""
    for graph in model.subgraphs:
        taken = {t.name for t in graph.tensors}
        for index in {i for op in graph.operators for i in op.outputs}:
            tensor = graph.tensors[index]
            short = tensor.name.split(b";")[0]
            if short != tensor.name and short not in taken:
                taken.add(short)
                tensor.name = short


def comparable_pair(reference: bytes, quantized: bytes) -> tuple[bytes, bytes]:
    """Both models, layer outputs named by :func:`short_activation_names`, and every tensor
    whose name the other model gives to a tensor of another shape renamed apart (``name#float`` / ``name#quantized``), so that name matching pairs only
    like with like: converters name constants per conversion (MLIR's ``arith.constant9`` is
    another tensor in each file)."""
    import flatbuffers

    from artery_edge.edge.metadata import TFLITE_IDENTIFIER, load_schema

    schema = load_schema()
    models = [schema.ModelT.InitFromPackedBuf(bytearray(data), 0) for data in (reference, quantized)]
    for model in models:
        short_activation_names(model)

    def shapes(model) -> dict:
        return {t.name: tuple(t.shape if t.shape is not None else ()) for g in model.subgraphs for t in g.tensors}

    found = [shapes(m) for m in models]
    packed = []
    for model, own, other, tag in zip(models, found, found[::-1], ("float", "quantized")):
        for graph in model.subgraphs:
            for tensor in graph.tensors:
                if tensor.name in other and other[tensor.name] != own[tensor.name]:
                    tensor.name = tensor.name + f"#{tag}".encode()
        builder = flatbuffers.Builder(len(reference) + 1024)
        builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
        packed.append(bytes(builder.Output()))
    return packed[0], packed[1]


def compare(quantized: Path, reference: Path, images: np.ndarray) -> list[dict]:
    """Per layer output (activation) both models share: SNR (dB) and cosine similarity of the
    quantized model's values against the float32 twin's, over ``images`` (uint8 N x S x S x 3);
    worst SNR first."""
    import warnings

    warnings.filterwarnings("ignore", module="litert_quantizer")  # its import warns about optional backends
    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")  # needed: every tensor compared
    try:
        from litert_quantizer import model_validator
        from litert_quantizer.utils.validation_utils import ValidationErrorMetric
    except ImportError:
        raise ReportError(QUANTIZE_HINT) from None
    from artery_edge.edge.runtime import find_backend

    check_pair(quantized, reference)
    reference_bytes, quantized_bytes = comparable_pair(Path(reference).read_bytes(), Path(quantized).read_bytes())
    interpreter = find_backend()[1](model_content=reference_bytes)
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        raise ReportError(f"{reference}: expected one signature, found {len(signatures)}")
    key, signature = next(iter(signatures.items()))
    data = {key: [{signature["inputs"][0]: image[np.newaxis].astype(np.float32)} for image in images]}
    result = model_validator.compare_model(
        reference_bytes, quantized_bytes, data,
        [ValidationErrorMetric.SNR, ValidationErrorMetric.COSINE_SIMILARITY], compare_fns=None)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    activations = {names[i] for op in interpreter._get_ops_details() for i in op["outputs"]}
    rows = []
    for tensor, metrics in result.get_all_tensor_results().items():
        if tensor not in activations:
            continue  # the image (exact by construction) and constants: a weight's error shows in its layer's output
        snr = metrics.get("snr")
        rows.append({"layer": layer_name(tensor), "tensor": tensor,
                     "snr_db": 10 * math.log10(snr) if snr and snr > 0 else -math.inf,
                     "cosine": metrics.get("cosine_similarity")})
    if not rows:
        raise ReportError(f"{quantized} shares no tensor names with {reference}: not its twin?")
    return sorted(rows, key=lambda r: r["snr_db"])


def write_report(rows: Sequence[dict], base: Path, quantized: Path, reference: Path, n_images: int) -> list[Path]:
    """``layer_report.md`` (all tensors, worst first) and ``layer_report.png`` (the worst) in a
    new folder ``base`` (``base-2``... if it exists: earlier reports are kept)."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(QUANTIZE_HINT) from None
    folder, _ = new_folder(base, lambda temp: write_files(rows, temp, quantized, reference, n_images, matplotlib))
    return [folder / REPORT_FILE, folder / CHART_FILE]


REPORT_FILE, CHART_FILE = "layer_report.md", "layer_report.png"


def write_files(rows: Sequence[dict], folder: Path, quantized: Path, reference: Path, n_images: int, matplotlib) -> None:
    literal_figures(matplotlib)
    import matplotlib.pyplot as plt

    lines = [f"# Per-layer error: {markdown(Path(quantized).name)} vs {markdown(Path(reference).name)}", "",
             f"{len(rows)} layer outputs shared by both models, compared on {n_images} image(s); worst first. "
             "SNR = 10 log10(mean(float^2) / mean((quantized - float)^2)): higher is better; "
             "below about 20 dB a layer loses visible precision.", "",
             "| rank | layer | SNR (dB) | cosine |", "|---|---|---|---|"]
    lines += [f"| {i} | {markdown_code(r['layer'], in_table=True)} | {r['snr_db']:.1f} | {number(r['cosine'], 5)} |"
              for i, r in enumerate(rows, 1)]
    (folder / REPORT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    shown = list(rows[:SHOWN])[::-1]
    figure, axis = plt.subplots(figsize=(9, 0.3 * len(shown) + 1.5))
    axis.barh([r["layer"] for r in shown], [r["snr_db"] for r in shown], color="tab:red")
    axis.set_xlabel("SNR vs float32 (dB), higher is better")
    axis.set_title(f"{Path(quantized).name}: the {len(shown)} worst layers")
    axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(folder / CHART_FILE, dpi=110)
    plt.close(figure)
