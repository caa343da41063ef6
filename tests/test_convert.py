"""`artery-edge convert`: three precisions, serving graph, INT8 integer-only, metadata, safety."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge import Classifier, read_metadata  # noqa: E402
from artery_edge.edge.metadata import load_schema  # noqa: E402

runner = CliRunner()
RANDOM_OPS = ("RANDOM", "MULTINOMIAL", "IMAGE_PROJECTIVE", "STATELESS")


def op_names(path: Path) -> set[str]:
    schema = load_schema()
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    found = set()
    for code in codes:
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        found.add(code.CustomCode().decode() if code.CustomCode() else names[builtin])
    return found


def tensor_types(path: Path) -> set[int]:
    schema = load_schema()
    graph = schema.Model.GetRootAs(path.read_bytes(), 0).Subgraphs(0)
    return {graph.Tensors(i).Type() for i in range(graph.TensorsLength())}


def test_all_three_load_and_run(converted_run):
    _, models = converted_run
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    for precision, path in models.items():
        classifier = Classifier(path)
        assert classifier.backend == "ai_edge_litert"
        prediction = classifier.predict(image)
        assert abs(sum(prediction.probabilities.values()) - 1) < 0.02, precision


def test_sizes_shrink_with_precision(converted_run):
    _, models = converted_run
    size = {p: path.stat().st_size for p, path in models.items()}
    assert size["int8"] < size["float16"] < size["float32"]


def test_int8_is_integer_only_with_uint8_input(converted_run):
    _, models = converted_run
    schema = load_schema()
    classifier = Classifier(models["int8"])
    assert classifier.input_dtype == np.uint8
    assert classifier._input["quantization"] == (1.0, 0)  # raw 0..255 pixels are exact
    assert np.dtype(classifier._output["dtype"]) == np.uint8
    float_types = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16}
    assert not tensor_types(models["int8"]) & float_types
    assert "DEQUANTIZE" not in op_names(models["int8"])


def test_no_augmentation_or_random_ops_in_any_graph(converted_run):
    _, models = converted_run
    for path in models.values():
        ops = op_names(path)
        assert "CONV_2D" in ops and "DEPTHWISE_CONV_2D" in ops
        assert not [op for op in ops if any(word in op for word in RANDOM_OPS)], ops


def test_metadata_round_trips(converted_run):
    run, models = converted_run
    for precision, path in models.items():
        meta = read_metadata(path)
        assert meta.labels == ["Healthy", "Unhealthy"] and meta.input_size == 48
        assert meta.precision == precision and meta.color_order == "RGB" and meta.input_range == (0.0, 255.0)
        assert meta.resize_method == "pillow-bilinear" and meta.positive_label == "Unhealthy"
        assert len(meta.model_sha256) == 64 and meta.artery_edge_version and meta.created
        assert meta.training["alpha"] == 0.35 and meta.training["image_size"] == 48


def test_float32_matches_keras_on_the_same_tensor(converted_run):
    import keras

    from artery_edge.trainer.model import serving_model

    from artery_edge.trainer.runs import load_run

    run, models = converted_run
    model = keras.models.load_model(run.run_dir / "model.keras")
    temperature = load_run(run.run_dir).temperature
    x = np.random.default_rng(1).uniform(0, 255, (1, 48, 48, 3)).astype(np.float32)
    expected = np.asarray(serving_model(model, temperature)(x, training=False))[0]
    classifier = Classifier(models["float32"])
    assert np.max(np.abs(classifier.invoke(x) - expected)) <= 1e-4
    assert classifier.metadata.temperature == temperature != 1.0  # the run's fitted T is baked in and recorded


def test_source_model_is_not_modified_and_overwrite_needs_force(converted_run):
    run, models = converted_run
    digest = read_metadata(models["float32"]).model_sha256
    from artery_edge.edge.metadata import sha256_of_file

    assert sha256_of_file(run.run_dir / "model.keras") == digest
    before = models["float16"].read_bytes()
    result = runner.invoke(app, ["convert", str(run.run_dir), "--quantize", "float16"])
    assert result.exit_code != 0 and "--force" in result.output
    assert models["float16"].read_bytes() == before


def test_cli_report_json_and_out_dir(converted_run, tmp_path):
    run, _ = converted_run
    result = runner.invoke(app, ["convert", str(run.run_dir), "--quantize", "float32,float16", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["precision"] for r in report] == ["float32", "float16"]
    assert report[0]["ratio_to_float32"] == 1.0 and 0.3 < report[1]["ratio_to_float32"] < 0.8
    assert all(Path(r["path"]).parent == tmp_path and r["seconds"] > 0 for r in report)
    assert not list(tmp_path.glob(".*tmp"))


def test_convert_prints_no_native_quantizer_line(trained_run, tmp_path, capfd):
    """The converter's C++ prints "fully_quantize: 0, inference_type: 6, ..." on file descriptor 2,
    past every log setting: kept off the terminal (ARTERY_EDGE_VERBOSE=1 shows it)."""
    result = runner.invoke(app, ["convert", str(trained_run.run_dir), "--quantize", "int8", "--calibration-images",
                                 "8", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    native = capfd.readouterr()
    assert "fully_quantize" not in native.out + native.err, native
    assert json.loads(result.stdout)[0]["precision"] == "int8"


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("missing", [], "does not exist"),
        ("not_keras", [], "cannot be loaded as a Keras model"),
        ("not_image", [], "square RGB image"),
        ("run", ["--quantize", "int4"], "--quantize: unknown precision"),
        ("run", ["--weight-rounding", "exact"], "unknown weight rounding"),
        ("run", ["--float16-keep-below", "-1"], "--float16-keep-below"),
        ("moved_data", ["--quantize", "int8"], "calibration images cannot be built"),
        ("run", ["--quantize", "int8", "--calibration-data", "EMPTY"], "calibration data"),
        ("run", ["--quantize", "float32", "--labels", "Unhealthy,Healthy"], "every decision would be inverted"),
        ("run", ["--quantize", "float32", "--labels", "Healthy,Healthy"], "duplicate label"),
    ],
)
def test_bad_inputs_fail_in_one_line_with_nothing_left(converted_run, tmp_path, setup, args, message):
    import keras

    run, _ = converted_run
    target = tmp_path / "out"
    source = tmp_path / "model.keras"
    if setup == "missing":
        source = tmp_path / "absent.keras"
    elif setup == "not_keras":
        source.write_text("hello")
    elif setup == "not_image":
        inputs = keras.Input((10,))
        keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(source)
    elif setup in ("run", "moved_data"):
        source = tmp_path / "run"
        shutil.copytree(run.run_dir, source, ignore=shutil.ignore_patterns("*.tflite"))
        if setup == "moved_data":
            config = json.loads((source / "config.json").read_text())
            config["data_dirs"] = [str(tmp_path / "moved-away")]
            (source / "config.json").write_text(json.dumps(config))
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    (tmp_path / "empty").mkdir()
    labels = [] if setup in ("run", "moved_data") else ["--labels", "A,B"]  # a run knows its classes
    result = runner.invoke(app, ["convert", str(source), *labels, "--out", str(target), *args])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not list(target.glob("*.tflite")) if target.exists() else True


# a .tflite that appears while converting is not replaced; leftovers of a killed run go;
# files get the umask's mode
def test_convert_never_replaces_and_cleans_up(tmp_path):
    from artery_edge.converters.tflite import ConversionError, remove_stale_temporaries, write_models

    target = tmp_path / "model_int8.tflite"
    target.write_bytes(b"someone else's")
    first = tmp_path / "model_float32.tflite"
    with pytest.raises(ConversionError, match="created meanwhile"):
        write_models({first: b"ours too", target: b"ours"}, overwrite=False)
    assert target.read_bytes() == b"someone else's" and not list(tmp_path.glob(".*.tmp"))
    assert not first.exists()  # all of a conversion's new files or none
    write_models({target: b"ours"}, overwrite=True)
    assert target.read_bytes() == b"ours"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model_int8.tflite.{int(dead.stdout)}.tmp"
    alive = tmp_path / f".model_int8.tflite.{os.getpid()}.tmp"
    stale.write_bytes(b"killed mid-write")
    alive.write_bytes(b"still being written")
    assert remove_stale_temporaries(tmp_path) == [stale] and alive.exists()


def test_a_run_whose_model_keras_was_replaced_is_not_converted(tmp_path):
    """run.json records its model's SHA-256: another model.keras in its place is refused before
    any file is written (as a parent, a teacher or evaluated: tests/test_runs_as_inputs.py)."""
    from artery_edge.converters.options import ConvertOptions
    from artery_edge.converters.tflite import convert
    from artery_edge.edge.metadata import sha256_of_file
    from artery_edge.edge.provenance import ForeignModelError
    from tests.test_runs_as_inputs import fake_run

    run = fake_run(tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "model_sha256": sha256_of_file(run / "model.keras")}))
    (run / "model.keras").write_bytes(b"another run's model")
    with pytest.raises(ForeignModelError, match="is not the model the run .* finished with"):
        convert(run, ConvertOptions(["float32"], out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()
