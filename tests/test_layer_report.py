"""`inspect --report` on the suite's tiny converted run: every quantized precision is compared
with its float32 twin layer by layer, the worst first, as Markdown and a chart."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("litert_quantizer", reason="LiteRT Quantizer not installed (quantize extra)")
pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge.precisions import FLOAT_REFERENCE, PRECISIONS  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != FLOAT_REFERENCE.name])
def test_report_names_the_layers_worst_first(converted_run, tmp_path, precision):
    _, models = converted_run
    result = runner.invoke(app, ["inspect", str(models[precision]), "--report", "--count", "3",
                                 "--out", str(tmp_path / "report"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    layers = report["layers"]
    assert report["images"] == 3 and len(layers) > 5
    assert [r["snr_db"] for r in layers] == sorted(r["snr_db"] for r in layers)  # worst first
    assert any("block_" in r["layer"] or "Conv" in r["layer"] for r in layers)  # MobileNetV2 layer names
    markdown = (tmp_path / "report" / "layer_report.md").read_text()
    assert f"`{layers[0]['layer']}`" in markdown.split("| 1 |")[1].splitlines()[0]
    assert (tmp_path / "report" / "layer_report.png").stat().st_size > 1000
    # a second report never overwrites the first
    again = runner.invoke(app, ["inspect", str(models[precision]), "--report", "--count", "1",
                                "--out", str(tmp_path / "report")])
    assert again.exit_code == 0 and (tmp_path / "report-2" / "layer_report.md").is_file()


def test_report_without_a_float_twin_is_one_line(converted_run, tmp_path):
    _, models = converted_run
    lonely = tmp_path / "alone.tflite"
    lonely.write_bytes(models["int8"].read_bytes())
    result = runner.invoke(app, ["inspect", str(lonely), "--report"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "no float32 twin" in errors[0]
