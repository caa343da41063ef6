"""The native runtime seen from a terminal: its log lines hidden unless --verbose, and SIGTERM to
`benchmark` ending its measuring child. TF-free."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bad_inputs import cli, model, save_png  # noqa: F401 (model: a fixture)


# the runtime's native log lines stay off the terminal unless --verbose
def test_litert_log_lines_are_silenced_unless_verbose(model, tmp_path):
    image = save_png(tmp_path / "x.png")
    quiet = cli("infer", "--model", str(model), "--image", str(image))
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stderr
    loud = cli("--verbose", "infer", "--model", str(model), "--image", str(image))
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


# SIGTERM to benchmark ends its measuring child too
def test_sigterm_to_benchmark_stops_its_child(model):
    parent = subprocess.Popen([sys.executable, "-m", "artery_edge.cli", "benchmark", "--model", str(model),
                               "--runs", "100000000", "--warmup", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def children() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "stat").read_text().split()[3] == str(parent.pid):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 60
    while not children() and time.monotonic() < deadline:
        time.sleep(0.2)
    child = children()
    assert child, "the measuring child never started"
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    time.sleep(0.5)
    assert not Path(f"/proc/{child[0]}").exists() or "Z" in Path(f"/proc/{child[0]}/stat").read_text().split()[2]
