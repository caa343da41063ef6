"""Progress bars (edge.progress): drawn on a terminal, silent in logs, pipes and with --json."""

from __future__ import annotations

import io
import sys

import pytest

from artery_edge.edge.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def count_to_three(quiet: bool = False) -> None:
    with progress_bar("counting", quiet) as progress:
        for done in range(1, 4):
            progress(done, 3)


def test_a_terminal_sees_the_bar_to_its_end(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    count_to_three()
    assert "counting" in sys.stderr.getvalue() and "3/3" in sys.stderr.getvalue()


@pytest.mark.parametrize("stderr, quiet", [(io.StringIO(), False), (Terminal(), True)])
def test_a_log_or_json_run_sees_nothing(monkeypatch, capsys, stderr, quiet):
    monkeypatch.setattr(sys, "stderr", stderr)
    count_to_three(quiet)
    assert stderr.getvalue() == "" and capsys.readouterr().out == ""
