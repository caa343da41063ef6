"""What the commands print, in one place: the fixed-width tables, the JSON documents and the
summary lines of every command (the CSV files are :class:`edge.report_csv.ResultsCsv`'s).

Results on stdout, everything else (progress, notes, errors) on stderr, so ``--json`` output
and a piped table stay clean. Text from outside (file and class names) passes
:func:`edge.text.terminal`. Standard library only: the device package prints with it too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from artery_edge.edge.text import terminal


def show(line: str) -> None:
    """One result line on stdout."""
    print(line, flush=True)


def say(line: str) -> None:
    """One line on stderr: what is not a result (the model used, notes, errors, counts)."""
    print(line, file=sys.stderr, flush=True)


def print_errors(messages: Iterable[str]) -> None:
    """``error: ...`` per input that failed while the others went on."""
    for message in messages:
        say(f"error: {terminal(message)}")


def print_json(data: Any, allow_nan: bool = False) -> None:
    """One JSON document on stdout; strict JSON (no NaN) unless the document has always allowed it."""
    show(json.dumps(data, indent=2, default=str, allow_nan=allow_nan))


def print_json_line(data: Any) -> None:
    """One JSON line on stdout (a frame of a camera or video: a log a service appends to)."""
    show(json.dumps(data))


@dataclass(frozen=True)
class Column:
    """One column of a fixed-width table: its title, a format spec (``<12``, ``>16.4f``), at most
    ``clip`` characters of a text cell, and ``gap`` before it."""

    title: str
    spec: str = ""
    clip: Optional[int] = None
    gap: str = ""

    def cell(self, value: Any) -> str:
        """A text cell made printable, then clipped, then padded (the width counts what is shown)."""
        if isinstance(value, (str, os.PathLike)):
            value = terminal(value)[:self.clip]
        return f"{self.gap}{value:{self.spec}}"

    def heading(self) -> str:
        align_and_width = re.match(r"[<>^]?\d*", self.spec).group()
        return f"{self.gap}{terminal(self.title):{align_and_width}}"


def table_header(columns: Sequence[Column]) -> str:
    return "".join(column.heading() for column in columns)


def table_row(columns: Sequence[Column], values: Sequence[Any]) -> str:
    return "".join(column.cell(value) for column, value in zip(columns, values))


def infer_columns(positive: str) -> list[Column]:
    """``infer``'s table: one row per file (per frame of a cine)."""
    return [Column("label", "<12"), Column(f"p({positive})", ">16.4f"), Column("ms", ">9.1f"),
            Column("true class", "<14", gap="  "), Column("file")]


def print_file_result(columns: Sequence[Column], result: Any, file: str) -> None:
    """One row of ``infer``'s table (a FileResult of edge.batch), or its error line on stderr."""
    if result.error:
        say(f"error: {terminal(result.error)}")
        return
    p = result.prediction
    truth = "-" if result.correct is None else f"{result.true_label} {'ok' if result.correct else 'WRONG'}"
    frame = "" if result.frame is None else f" frame {result.frame}"
    show(table_row(columns, [p.label, p.positive_probability, p.total_ms, truth, file + frame]))


SCAN_COLUMNS = [Column("lesions", ">7"), Column("peak", ">8.3f"), Column("ms", ">9.1f"), Column("file", gap="  ")]
CONVERT_COLUMNS = [Column("precision", "<10"), Column("size (MB)", ">10.2f"), Column("vs float32", ">12"),
                   Column("time (s)", ">10.1f"), Column("file", gap="  ")]
BENCHMARK_COLUMNS = [
    Column("model", "<28", clip=27), Column("precision", ">10", clip=9), Column("MB", ">7.2f"),
    Column("load ms", ">9.1f"), Column("p50 ms", ">8.3f"), Column("p95 ms", ">8.3f"), Column("mean ms", ">9.3f"),
    Column("path ms", ">9.2f"), Column("img/s", ">8.0f"), Column("RSS MB", ">8.1f"), Column("backend", gap="  ")]


def print_training(run_dir: Path, metrics: dict, seconds: float, json_output: bool) -> None:
    """``train`` and ``adapt``: the run folder and its figures (test split, or validation when there is none)."""
    if json_output:
        print_json({"run_dir": str(run_dir), **metrics})
        return
    m = metrics
    show(f"run: {run_dir}")
    summary = ", ".join(
        f"{k} {m[k]:.3f}" for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "arcade_f1", "recall",
                                    "false_per_frame") if m.get(k) is not None
    )
    at = f" at threshold {m['threshold']:.3f} ({m['operating_point']})" if m.get("threshold") is not None else ""
    show(f"{m.get('evaluated_on', 'test')} ({m.get('n', m.get('frames'))} images){at}: {summary}; {seconds:.0f} s")


def print_conversions(results: Sequence[Any], json_output: bool) -> None:
    """``convert``: one row per precision written (a ConversionResult each)."""
    if json_output:
        print_json([r.to_dict() for r in results])
        return
    show(table_header(CONVERT_COLUMNS))
    for r in results:
        ratio = f"{r.ratio_to_float32:.3f}" if r.ratio_to_float32 is not None else "n/a"
        show(table_row(CONVERT_COLUMNS, [r.precision, r.bytes / 1e6, ratio, r.seconds, r.path]))


def print_evaluation(folder: Path, report: dict, json_output: bool,
                     metrics_table: Callable[[dict, Callable[[Any], str]], list[str]]) -> None:
    """``evaluate`` of a patch classifier: the metrics table (``metrics_table``, evaluation.report's),
    each TFLite file's agreement with Keras, and where the report is."""
    if json_output:
        print_json({"folder": str(folder), **report})
        return
    show("\n".join(metrics_table(report, terminal)))
    for name, a in report["agreement_with_keras"].items():
        show(f"{terminal(name)}: labels identical to Keras {a['label_agreement']:.2%}, "
             f"|dp| mean {a['mean_abs_diff']:.5f} max {a['max_abs_diff']:.5f}")
    show(terminal(f"report: {folder / 'report.md'}"))


def print_frame_evaluation(folder: Path, lines: list[str], report: dict, json_output: bool) -> None:
    """``evaluate`` of a whole-frame run: its summary lines and report, or the JSON document."""
    if json_output:
        print_json({"folder": str(folder), **report}, allow_nan=True)
        return
    show("\n".join(map(terminal, lines + [f"report: {folder / 'report.md'}"])))


def print_explanations(folder: Path, grid: Path, explanations: Sequence[Any], overlays: Sequence[Path],
                       skipped: int, json_output: bool) -> None:
    """``explain``: each image's decided label and probability, and the overlay drawn for it."""
    if json_output:
        print_json({"folder": str(folder), "grid": str(grid), "skipped": skipped,
                    "images": [{"file": str(e.path), "overlay": str(o), "label": e.label, "probability": e.probability}
                               for e, o in zip(explanations, overlays)]})
        return
    for e, o in zip(explanations, overlays):
        show(terminal(f"{e.label:<12}{e.probability:>8.3f}  {e.path} -> {o.name}"))
    show(terminal(f"grid: {grid} ({len(explanations)} images, overlays beside it)"))


def print_benchmarks(results: list[dict], json_output: bool) -> None:
    """``benchmark``: one row per model, side by side."""
    if json_output:
        print_json(results)
        return
    show(table_header(BENCHMARK_COLUMNS))
    for r in results:
        show(table_row(BENCHMARK_COLUMNS, [
            Path(r["model"]).name, r["precision"], r["size_bytes"] / 1e6, r["load_ms"], r["p50_ms"], r["p95_ms"],
            r["mean_ms"], r["pipeline_p50_ms"], r["throughput_ips"], r["peak_rss_mb"],
            f"{r['backend']} ({r['threads'] or 'default'} threads)"]))


def print_summary(summary: dict, json_output: bool) -> None:
    """``inspect``: what a .tflite file is (edge.inspect's summary)."""
    from artery_edge.edge.inspect import format_summary

    if json_output:
        print_json(summary, allow_nan=True)
        return
    show(format_summary(summary))


def print_layer_report(model: Path, reference: Path, images: int, files: Sequence[Path], rows: list[dict],
                       json_output: bool) -> None:
    """``inspect --report``: the five layers that lose most, and where the report and chart are."""
    if json_output:
        print_json({"model": str(model), "reference": str(reference), "images": images,
                    "files": [str(f) for f in files], "layers": rows})
        return
    show(f"{len(rows)} layer outputs compared on {images} image(s); the worst:")
    for row in rows[:5]:
        show(terminal(f"  {row['snr_db']:6.1f} dB  cosine {row['cosine']:.5f}  {row['layer']}"))
    show(terminal(f"report: {files[0]}  chart: {files[1]}"))
