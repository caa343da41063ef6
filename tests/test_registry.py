"""One source of truth: the precision registry, the training defaults, the error base class
and the version. TF-free."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import artery_edge
from artery_edge import cli
from artery_edge.cli import app
from artery_edge.edge.errors import ArteryEdgeError
from artery_edge.edge.precisions import PRECISIONS, model_files, parse_precisions, precision_of_file
from artery_edge.trainer.config import DEFAULTS

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def test_precisions_parse_in_registry_order_and_name_their_files(tmp_path):
    assert [p.name for p in parse_precisions("all")] == list(PRECISIONS)
    assert [p.name for p in parse_precisions("int8, float32")] == ["float32", "int8"]
    with pytest.raises(ArteryEdgeError, match="unknown precision int4"):
        parse_precisions("float16,int4")
    for precision in PRECISIONS.values():
        precision.file(tmp_path).write_bytes(b"")
        assert precision_of_file(precision.file(tmp_path)) == precision.name
    assert [precision_of_file(f) for f in model_files(tmp_path)] == list(PRECISIONS)


def test_no_precision_file_name_is_spelled_out_outside_the_registry():
    pattern = re.compile(r"model_(float32|float16|int8|dynamic)\.tflite|model_\{|model_\*")
    offenders = [str(path.relative_to(REPO)) for folder in ("artery_edge", "trainer", "edge", "converters",
                                                             "evaluation", "benchmarks", "studies",
                                                             "platform", "tests/probes")
                 for path in (REPO / folder).rglob("*.py")
                 if path.name != "precisions.py" and pattern.search(path.read_text())]
    assert offenders == []


@pytest.mark.parametrize("args, message", [
    (["--quantize", "float16", "--weight-rounding", "nearest"], "--weight-rounding applies only to int8"),
    (["--quantize", "float32,dynamic", "--calibration-images", "10"], "--calibration-images applies only to int8"),
    (["--quantize", "int8", "--float16-keep-below", "0"], "--float16-keep-below applies only to float16"),
    (["--quantize", "int4"], "unknown precision int4"),
])
def test_convert_refuses_what_does_not_apply_in_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["convert", str(tmp_path), *args])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


PATH_OPTIONS = ("split_file", "init_from", "teachers")  # path(s) or none on the CLI, "" / [] in the config


def test_every_train_default_comes_from_the_config():
    command = typer.main.get_command(app).commands["train"]
    defaults = DEFAULTS.to_dict()
    checked = 0
    for param in command.params:
        if param.param_type_name == "option" and param.name in defaults and param.name not in PATH_OPTIONS:
            expected = defaults[param.name]
            assert param.default == expected or str(param.default) == str(expected), param.name
            checked += 1
    assert checked >= len(defaults) - 2 - len(PATH_OPTIONS)  # data_dirs (argument), sample_grid_size (config only)


def test_a_bug_is_not_dressed_up_as_a_one_line_error(monkeypatch):
    """The CLI prints project errors as 'error: ...'; a plain ValueError keeps its traceback."""
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("artery_edge.edge.inspect.summarize", broken)
    result = runner.invoke(app, ["inspect", "x.tflite"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "error: a bug" not in result.output

    def refused(*args, **kwargs):
        raise ArteryEdgeError("bad input")

    monkeypatch.setattr("artery_edge.edge.inspect.summarize", refused)
    result = runner.invoke(app, ["inspect", "x.tflite"])
    assert result.exit_code == 1 and "error: bad input" in result.output


def test_the_version_comes_from_the_installed_distribution():
    assert artery_edge.__version__ == importlib.metadata.version("artery-edge")
    assert runner.invoke(app, ["--version"]).stdout.strip() == f"artery-edge {artery_edge.__version__}"


def test_library_modules_do_not_import_the_cli_package():
    for folder in ("trainer", "edge", "converters", "evaluation"):
        for path in (REPO / folder).rglob("*.py"):
            assert not re.search(r"^\s*(from artery_edge(\.cli)? import cli|(from|import) artery_edge\.cli\b)",
                                 path.read_text(), re.M), path


def test_errors_of_every_package_share_the_base():
    from artery_edge.converters.options import ConversionError
    from artery_edge.edge.errors import EdgeError
    from artery_edge.evaluation.layer_report import ReportError
    from artery_edge.trainer.config import ConfigError
    from artery_edge.trainer.samples import DataError

    assert all(issubclass(e, ArteryEdgeError) for e in (ConversionError, EdgeError, ReportError, ConfigError, DataError))
    assert cli.user_errors  # the one place that turns them into 'error: ...'
