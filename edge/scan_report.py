"""``scan`` end to end: load the whole-frame model, scan every input, print a table or one JSON
document, write overlays. The CLI only declares the options (``edge.scan_options``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

from artery_edge.edge import atomic
from artery_edge.edge.batch import expand_inputs
from artery_edge.edge.imaging import display_path
from artery_edge.edge.lesions import boxes_text
from artery_edge.edge.overlay import draw_scan
from artery_edge.edge.printers import SCAN_COLUMNS, print_json, show, table_header, table_row
from artery_edge.edge.printers import say as say_line
from artery_edge.edge.progress import progress_bar
from artery_edge.edge.scan_batch import VIDEO_EXTENSIONS, ScanResult, overlay_name, scan_document, scan_inputs, scan_row
from artery_edge.edge.scan_options import ScanOptions
from artery_edge.edge.scanner import FrameScanner
from artery_edge.edge.text import terminal


def say(message: str) -> None:
    say_line(terminal(message))


def resolve_model(options: ScanOptions) -> Path:
    """The given model, or the packaged whole-frame model (said on stderr)."""
    if options.model is not None:
        return options.model
    from artery_edge.edge.reference import packaged_frame_model

    path = packaged_frame_model()
    say(f"no --model given: using the packaged whole-frame model {path}")
    return path


def inputs(options: ScanOptions) -> tuple[list[Path], list[str]]:
    """Folders expanded to their images; videos and files taken as given."""
    videos = [p for p in options.paths if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    files, problems = expand_inputs([p for p in options.paths if p not in videos])
    return files + videos, problems


def write_overlay(result: ScanResult, out: Path, taken: set[str]) -> Optional[str]:
    """The overlay PNG of one frame under a name not used by this scan, never over an existing
    file; returns its path, or raises FileExistsError."""
    name = overlay_name(result)
    stem, number = name[:-4], 2
    while name in taken:
        name, number = f"{stem}-{number}.png", number + 1
    taken.add(name)
    buffer = io.BytesIO()
    draw_scan(result.image, result.scan).save(buffer, format="PNG")
    out.mkdir(parents=True, exist_ok=True)  # made with its first overlay: a scan that found no frame leaves no folder
    atomic.write_bytes(out / name, buffer.getvalue(), overwrite=False)
    return str(out / name)


def run_scan(options: ScanOptions) -> int:
    """Scan, report, and return the exit code: 1 if any input failed, else 0."""
    model = resolve_model(options)
    scanner = FrameScanner(model, threads=options.threads)
    say(f"model {model.name}: {scanner.precision}, backend {scanner.backend}, threshold "
        f"{options.threshold if options.threshold is not None else scanner.threshold:.2f}")
    if scanner.warning:
        say(scanner.warning)
    files, problems = inputs(options)
    for message in problems:
        say(f"error: {message}")
    if not files:
        say("error: no frames found in the given paths")
        return 1
    rows, taken, failed = [], set(), len(problems)
    if not options.json_output:
        show(table_header(SCAN_COLUMNS))
    with progress_bar("scanning", quiet=options.json_output) as progress:
        for done, result in enumerate(scan_inputs(scanner, files, options.threshold, options.frames,
                                                  options.persistence, options.max_frames), 1):
            progress(min(done, len(files)), len(files))
            for note in result.notes:
                say(f"note: {note}")
            row = scan_row(result)
            if result.scan is not None and options.out is not None:
                try:
                    row["overlay"] = write_overlay(result, options.out, taken)
                except FileExistsError:
                    row["error"] = result.error = f"{display_path(options.out)}: an overlay of this name exists; not replaced"
            rows.append(row)
            if result.error:
                failed += 1
                if not options.json_output:
                    say(f"error: {result.error}")
                continue
            if not options.json_output:
                frame = "" if result.frame is None else f" frame {result.frame}"
                boxes = boxes_text(result.scan.lesions)
                show(table_row(SCAN_COLUMNS, [len(result.scan.lesions), result.scan.peak, result.scan.total_ms,
                                              f"{row['file']}{frame}{'  ' + boxes if boxes else ''}"]))
    if options.json_output:
        document = scan_document(scanner, options.threshold, rows, failed, problems, options.persistence)
        print_json(document, allow_nan=True)
    if failed:
        say(f"{failed} input(s) failed")
    return 1 if failed else 0
