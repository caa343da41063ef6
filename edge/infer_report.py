"""``infer`` end to end: open the model, then classify image files (a table or one JSON
document, and a CSV as it goes) or a camera or video (a line or a JSON line per frame).
The CLI only declares the options (``edge.command_options``)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

from artery_edge.edge.command_options import InferOptions
from artery_edge.edge.errors import EdgeError, ImageError, OptionError
from artery_edge.edge.printers import (infer_columns, print_errors, print_file_result, print_json, print_json_line,
                                       say, show, table_header)
from artery_edge.edge.text import terminal


def run_infer(options: InferOptions) -> int:
    """Classify and report; returns the exit code: 1 if any file failed, else 0."""
    from artery_edge.edge.bench import open_model
    from artery_edge.edge.classifier import Classifier

    # files are for patch classifiers: a whole-frame model is one error line pointing to `scan`
    classifier = (Classifier(options.model, labels=options.labels, threads=options.threads) if options.images
                  else open_model(options.model, options.labels, options.threads))
    say(terminal(f"model {options.model.name}: {classifier.precision}, backend {classifier.backend}"))
    if classifier.warning:  # a modified packaged reference run anyway: said here and in --json
        say(terminal(classifier.warning))
    if options.images:
        return infer_files(classifier, options)
    infer_stream(classifier, options)
    return 0


def infer_files(classifier, options: InferOptions) -> int:
    """A row per file (per frame of a cine) as it is classified, streamed to the CSV too; the
    JSON document at the end; 1 if any file failed, else 0."""
    from artery_edge.edge.batch import classify_files, expand_inputs, result_row, results_document
    from artery_edge.edge.progress import progress_bar
    from artery_edge.edge.report_csv import ResultsCsv

    files, problems = expand_inputs(options.images)
    print_errors(problems)
    if not files:
        raise EdgeError("no image files found in the given paths")
    if options.show_header:
        show_dicom_headers(files)
    fields = ["file", "frame", "sop_instance_uid", "label"] + [f"p_{label}" for label in classifier.labels] + [
        "inference_ms", "true_label", "size_note", "error"]
    csv = ResultsCsv.create(options.csv_file, fields) if options.csv_file is not None else None  # a taken name: refused now
    columns = infer_columns(classifier.positive_label)
    if not options.json_output:
        show(table_header(columns))
    results, rows, notes, done = [], [], [], set()
    with csv or contextlib.nullcontext(), progress_bar("classifying", quiet=options.json_output) as progress:
        for result in classify_files(classifier, files, options.threshold, options.frame_numbers):
            done.add(result.path)
            progress(len(done), len(files))
            results.append(result)
            for note in result.notes:
                notes.append(note)
                say(f"note: {terminal(note)}")
            row = result_row(result, classifier.labels)
            rows.append(row)
            if csv:
                csv.write(row)
            if not options.json_output:
                print_file_result(columns, result, row["file"])
    failed = sum(1 for r in results if r.error) + len(problems)
    judged = [r.correct for r in results if r.correct is not None]
    if judged and not options.json_output:
        say(f"{sum(judged)} of {len(judged)} correct (true class from the class folder)")
    if options.json_output:
        print_json(results_document(classifier, options.threshold, rows, failed, problems, notes))
    if failed:
        say(f"{failed} of {len(files) + len(problems)} file(s) failed")
    return 1 if failed else 0


def show_dicom_headers(paths: Sequence[Path]) -> None:
    """``--show-header``: each DICOM file's header on stderr, identifying values masked (a file
    that cannot be read gets its error line where it is classified)."""
    from artery_edge.edge.dicom import header_lines, is_dicom, open_dicom

    for path in paths:
        if not is_dicom(path):
            continue
        try:
            lines = header_lines(open_dicom(path))
        except ImageError:
            continue
        say(terminal(f"header of {path} (identifying values masked):"))
        for line in lines:
            say(f"  {terminal(line)}")


def infer_stream(classifier, options: InferOptions) -> None:
    """The camera or video loop; a DICOM cine plays at its own frame rate. A line (or JSON line)
    per ``--every``th frame without a window; the frame count and rate on stderr at the end."""
    from artery_edge.edge.dicom import is_dicom, open_cine
    from artery_edge.edge.scanner import FrameScanner
    from artery_edge.edge.stream import frame_record, frame_text, run_stream

    if options.persistence is not None and not isinstance(classifier, FrameScanner):
        raise OptionError("--persist applies to whole-frame models (their lesions); this model classifies patches")
    source = options.source
    if isinstance(source, Path) and is_dicom(source):
        if options.show_header:
            show_dicom_headers([source])
        source = open_cine(source)
        say(terminal(f"{source.name}: {source.dicom.frames} frame(s)"))
        for note in source.notes:
            say(f"note: {terminal(note)}")

    def report(number: int, result, fps: float) -> None:
        if options.display or number % max(1, options.every) != 0:
            return
        if options.json_output:
            print_json_line(frame_record(number, result, fps))
        else:
            show(terminal(frame_text(number, result, fps, classifier.positive_label)))

    stats = run_stream(classifier, source, report, options.display, options.max_frames, options.crop,
                       options.threshold, options.persistence)
    say(f"{stats.frames} frames, {stats.fps:.1f} FPS")
