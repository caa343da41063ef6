"""The recipe search as a table: one row per finished training run, its settings that differ
from the defaults (trainer.config), its held-out test metrics at the run's stored threshold,
and its wall time. Add ``--int8`` to read the INT8 column from ``evaluation/metrics.json``.

    python studies/experiment_table.py models/padsd-*            # Markdown on stdout
    python studies/experiment_table.py models/padsd-* --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from artery_edge.edge.precisions import DEVICE_DEFAULT
from artery_edge.trainer.config import DEFAULTS

IGNORED = {"data_dirs", "output_dir", "run_name", "log_dir", "tensorboard", "split_file", "split_pattern"}


def settings(config: dict) -> str:
    """The run's settings that differ from the defaults, as CLI options."""
    defaults = DEFAULTS.to_dict()
    changed = [f"--{k.replace('_', '-')} {v}" for k, v in config.items()
               if k in defaults and k not in IGNORED and v != defaults[k]]
    return " ".join(changed) or "(defaults)"


def row(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").is_file() else {}
    found = {"run": run_dir.name, "settings": settings(config), "n": metrics.get("n"),
             "epochs": len(history.get("loss", [])), "minutes": round(metrics.get("train_seconds", 0) / 60, 1),
             "threshold": metrics.get("threshold")}
    found.update({k: metrics.get(k) for k in ("roc_auc", "accuracy", "sensitivity", "specificity")})
    evaluation = run_dir / "evaluation" / "metrics.json"
    if evaluation.is_file():
        report = json.loads(evaluation.read_text())
        int8 = report["models"].get(DEVICE_DEFAULT.name)
        if int8:
            found["int8"] = {k: int8["metrics"].get(k) for k in ("roc_auc", "accuracy", "sensitivity", "specificity")}
            found["int8_agreement"] = report["agreement_with_keras"][DEVICE_DEFAULT.name]["label_agreement"]
    return found


def markdown(rows: list[dict]) -> str:
    def f(value) -> str:
        return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| run | settings (vs defaults) | epochs | min | threshold | AUC | accuracy | sensitivity | specificity "
             "| INT8 AUC / acc / sens / spec |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        int8 = " / ".join(f(r["int8"][k]) for k in ("roc_auc", "accuracy", "sensitivity", "specificity")) \
            if "int8" in r else ""
        lines.append(f"| {r['run']} | {r['settings']} | {r['epochs']} | {r['minutes']} | {f(r['threshold'])} | "
                     f"{f(r['roc_auc'])} | {f(r['accuracy'])} | {f(r['sensitivity'])} | {f(r['specificity'])} | {int8} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row(r) for r in args.runs if (r / "metrics.json").is_file()]
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
