"""What a .tflite file is, without TensorFlow: its metadata, input and output tensors
(dtype, shape, scale / zero point) and how many ops of each kind it runs. For the device:
``artery-edge inspect MODEL.tflite``."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

from artery_edge.edge.bench import open_model
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.reference import reference_location
from artery_edge.edge.text import terminal

CARD = "MODEL_CARD.md"
REFERENCE_CARD = "models/reference/MODEL_CARD.md in the artery-edge repository (not installed with the package)"


def tensor_summary(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {"name": detail["name"], "dtype": detail["dtype"].__name__, "shape": [int(d) for d in detail["shape"]],
            "scale": float(scale), "zero_point": int(zero_point)}


def op_counts(interpreter) -> dict[str, int]:
    """Ops of the graph by kind (XNNPACK's DELEGATE node left out: it is not a model op)."""
    ops = Counter(op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE")
    return dict(sorted(ops.items(), key=lambda item: (-item[1], item[0])))


def model_card(model_path: Path) -> str:
    """Where the card with this file's measured figures is: a MODEL_CARD.md beside the model (or in
    its run's evaluation folder) that lists the file's SHA-256, the repository's card for the
    packaged reference model, or "" (a card that does not list the file is not its card)."""
    model_path = Path(model_path)
    if model_path.resolve() == reference_location().resolve():
        return REFERENCE_CARD
    digest = sha256_of_file(model_path)
    for card in (model_path.parent / CARD, model_path.parent / "evaluation" / CARD):
        if card.is_file() and digest in card.read_text(encoding="utf-8", errors="replace"):
            return str(card)
    return ""


def summarize(model_path: Path) -> dict:
    """The model's metadata (None if it carries none), tensors, op counts, size and backend; a
    whole-frame model too (``serve`` describes either)."""
    classifier = open_model(model_path, None, None)
    interpreter = classifier.interpreter
    return {
        "model": str(model_path),
        "bytes": Path(model_path).stat().st_size,
        "backend": classifier.backend,
        "precision": classifier.precision,
        "labels": classifier.labels,
        "threshold": classifier.threshold,
        "metadata": asdict(classifier.metadata) if classifier.metadata else None,
        "inputs": [tensor_summary(d) for d in interpreter.get_input_details()],
        "outputs": [tensor_summary(d) for d in interpreter.get_output_details()],
        "ops": op_counts(interpreter),
        "card": model_card(model_path),
    }


def format_summary(summary: dict) -> str:
    """The summary as a few readable lines; text from the file (labels, names, versions) cannot
    start a line of its own or move the cursor (``edge.text.terminal``)."""
    meta = summary["metadata"] or {}
    lines = [f"{summary['model']}: {summary['bytes'] / 1e6:.2f} MB, {summary['precision']}, backend {summary['backend']}",
             f"labels: {', '.join(summary['labels'])}"
             + (f"; threshold {summary['threshold']:.4f} on p({meta.get('positive_label')})"
                if summary["threshold"] is not None else "; arg-max")]
    if meta:
        lines.append(f"input {meta['input_size']} px {meta['color_order']}, range {tuple(meta['input_range'])}, "
                     f"resize {meta['resize_method']}; temperature {meta['temperature']:g}; "
                     f"artery-edge {meta['artery_edge_version'] or '?'}, created {meta['created'] or '?'}")
    parent = meta.get("parent") or {}
    if parent:
        lines.append(f"adapted from {parent.get('name', '?')} (trained on {parent.get('data') or '?'}; "
                     f"model.keras sha256 {parent.get('model_sha256', '?')})")
    for kind in ("inputs", "outputs"):
        for t in summary[kind]:
            quant = f", scale {t['scale']:g}, zero point {t['zero_point']}" if t["scale"] else ""
            lines.append(f"{kind[:-1]}: {t['name']} {t['dtype']} {t['shape']}{quant}")
    lines.append("ops: " + ", ".join(f"{name} {count}" for name, count in summary["ops"].items())
                 + f" ({sum(summary['ops'].values())} in all)")
    lines.append(f"card (how it was trained and measured): {summary['card']}" if summary["card"] else
                 f"card: none found (no {CARD} beside the model lists its SHA-256)")
    return "\n".join(terminal(line) for line in lines)
