"""What evaluate / convert / explain / inspect / infer write and accept, one test per defect class
(issue 22): text from files escaped in every writer, every file atomic, a model checked against
its run, option ranges before any work, EXIF orientation. TF-free and fast."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge import atomic
from artery_edge.edge.errors import OptionError
from artery_edge.edge.metadata import ModelMetadata
from artery_edge.edge.provenance import ForeignModelError, RunIdentity, check_labels, check_tflite, check_twin
from artery_edge.edge.text import markdown, markdown_code, terminal
from tests.bad_inputs import model, one_error_line, save_png  # noqa: F401 (model: a fixture)
from tests.tflite_builder import build_tiny_classifier

runner = CliRunner()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HOSTILE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(
    list("<>&|`*_[]\\\n\r\t\x1b\x00\x7f\x85$")), max_size=40)


# --- text from files: one Markdown escaper, one terminal escaper --------------------------------

@FAST
@given(HOSTILE)
def test_terminal_text_is_one_line_without_control_characters(text):
    shown = terminal(text)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", shown)
    assert all(part in shown for part in re.split(r"[\x00-\x1f\x7f-\x9f\\]", text) if part)


@FAST
@given(HOSTILE)
def test_markdown_text_cannot_open_html_a_cell_or_a_line(text):
    shown = markdown(text)
    assert "<" not in shown and ">" not in shown and "\n" not in shown and "\r" not in shown
    assert not re.search(r"(?<!\\)\|", shown.replace("\\\\", ""))  # every | escaped
    code = markdown_code(text, in_table=True)
    fence = re.match(r"`+", code).group()
    inner = code[len(fence):-len(fence)]
    assert code.endswith(fence) and fence not in inner and "\n" not in code
    assert not re.search(r"(?<!\\)\|", inner)


def test_an_html_class_folder_is_text_in_the_model_card(tmp_path):
    from artery_edge.trainer.config import TrainConfig

    names = ["<img src=x onerror=alert(1)>", "a|b\nc"]
    path = model_card_for(tmp_path, names, TrainConfig(data_dirs=[str(tmp_path / "d<b>|x")]))
    card = path.read_text()
    prose = re.sub(r"(`+).*?\1", "", card)  # code spans show < and | as they are: literal text
    assert "<" not in prose and "&lt;img src=x onerror=alert(1)&gt;" in card and "`d<b>|x`" in card
    assert r"a\|b\\nc" in card
    table = [line for line in card.splitlines() if line.startswith("| subset |")][0]
    assert len(re.findall(r"(?<!\\)\|", table)) == 4  # subset + two classes: no extra cell


def model_card_for(tmp_path: Path, class_names, config, report_changes=None) -> Path:
    """MODEL_CARD.md for a fake run and a fake evaluation report (no model needed)."""
    from types import SimpleNamespace

    from artery_edge.evaluation.model_card import write_model_card
    from artery_edge.evaluation.options import EvaluateOptions

    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "model.keras").write_bytes(b"k")
    (run_dir / "split.csv").write_text("file,class,subset,group\n" + "".join(
        f"f{i}.png,\"{c}\",test,\n" for i, c in enumerate(class_names)))
    run = SimpleNamespace(run_dir=run_dir, class_names=list(class_names), image_size=32, config=config,
                          threshold=0.4, parent=None, model_path=run_dir / "model.keras")
    options = EvaluateOptions(threshold=0.3, prevalence=0.2, bootstrap_rounds=10)
    entry = {"metrics": {"accuracy": 0.5, "npv": None, "ppv": 0.5}, "ci95": {}, "ece": 0.1, "threshold": 0.3,
             "confusion_matrix": [[0, 1], [0, 1]], "at_prevalence": {"prevalence": 0.2, "ppv": 0.2, "npv": None}}
    report = {"positive_class": class_names[-1], "evaluated_on": "test split of the run", "n": 2,
              "bootstrap_rounds": 10, "models": {"keras": entry, "a|<b>": entry},
              "agreement_with_keras": {"a|<b>": {"label_agreement": 1.0, "mean_abs_diff": 0.0, "max_abs_diff": 0.0}},
              "calibration": {"temperature": 1.0, "keras_ece_uncalibrated": 0.1}, "prevalence": 0.2,
              "operating_point": "--threshold 0.3", "threshold_source": "--threshold", "options": options.to_dict(),
              "reproduce": options.command(run_dir), **(report_changes or {})}
    path = tmp_path / "MODEL_CARD.md"
    write_model_card(path, report, run, [])
    return path


# --- evaluate: the threshold used is the one the card names; no option silently dropped ---------

def test_the_card_names_the_threshold_given_and_reproduces_every_option(tmp_path):
    from artery_edge.trainer.config import TrainConfig

    card = model_card_for(tmp_path, ["Healthy", "Unhealthy"], TrainConfig(data_dirs=["d"])).read_text()
    assert "every model at threshold 0.3 on p(Unhealthy), given as `--threshold`" in card
    assert "NPV n/a" in card  # every decision positive: NPV undefined, not a crash
    reproduce = re.search(r"Reproduce: `(.*)`", card).group(1)
    words = shlex.split(reproduce)
    assert words[words.index("--threshold") + 1] == "0.3" and words[words.index("--prevalence") + 1] == "0.2"
    assert words[words.index("--bootstrap") + 1] == "10"


def test_the_reproduce_command_writes_numbers_as_typed_whatever_their_type():
    """A NumPy float given by a caller is written 0.25, not np.float64(0.25)."""
    from artery_edge.evaluation.options import EvaluateOptions

    words = shlex.split(EvaluateOptions(None, None, np.float64(0.25), None, 100, np.float32(0.5)).command(Path("r")))
    assert words[words.index("--threshold") + 1] == "0.25" and words[words.index("--prevalence") + 1] == "0.5"


@FAST
@given(st.one_of(st.none(), st.floats(allow_nan=True)), st.one_of(st.none(), st.floats(allow_nan=True)),
       st.integers(-5, 200_000), st.one_of(st.none(), st.floats(allow_nan=True)))
def test_evaluate_options_are_checked_before_any_work(threshold, target, rounds, prevalence):
    from artery_edge.evaluation.options import MAX_BOOTSTRAP, EvaluateOptions

    valid = ((threshold is None or 0 <= threshold <= 1) and (target is None or 0 < target <= 1)
             and 1 <= rounds <= MAX_BOOTSTRAP and (prevalence is None or 0 < prevalence < 1)
             and (threshold is None or target is None))
    if valid:
        options = EvaluateOptions(None, None, threshold, target, rounds, prevalence)
        words = shlex.split(options.command(Path("runs/my run")))
        assert words[:4] == ["artery-edge", "evaluate", "--run", "runs/my run"]
        if threshold is not None:
            assert float(words[words.index("--threshold") + 1]) == threshold
    else:
        with pytest.raises(OptionError):
            EvaluateOptions(None, None, threshold, target, rounds, prevalence)


def test_the_same_model_twice_is_refused(tmp_path):
    from artery_edge.evaluation.options import EvaluateOptions

    with pytest.raises(OptionError, match="twice"):
        EvaluateOptions(models=[tmp_path / "m.tflite", tmp_path / "." / "m.tflite"])


def test_two_files_with_one_precision_name_get_two_columns():
    from artery_edge.evaluation.evaluate import model_names

    assert model_names([Path("a/model_int8.tflite"), Path("b/model_int8.tflite"), Path("keras.tflite")]) == [
        "keras", "int8", "int8-2", "keras-2"]


# --- a model belongs to its run ---------------------------------------------------------------

RUN = RunIdentity("runs/r1", ("Healthy", "Unhealthy"), 32, "a" * 64)


def metadata(**changes) -> ModelMetadata:
    values = dict(labels=["Healthy", "Unhealthy"], input_size=32, precision="int8", model_sha256="a" * 64)
    return ModelMetadata(**{**values, **changes})


@pytest.mark.parametrize("changes, message", [
    ({"labels": ["Unhealthy", "Healthy"]}, "every decision would be inverted"),
    ({"labels": ["Cats", "Dogs"]}, "classes Cats,Dogs"),
    ({"input_size": 48}, "input 48 px"),
    ({"model_sha256": "b" * 64}, "sha256 bbbbbbbbbbbb"),
])
def test_a_tflite_of_another_run_is_refused(changes, message):
    check_tflite(Path("m.tflite"), metadata(), RUN)
    with pytest.raises(ForeignModelError, match=message):
        check_tflite(Path("m.tflite"), metadata(**changes), RUN)
    with pytest.raises(ForeignModelError, match="no artery-edge metadata"):
        check_tflite(Path("m.tflite"), None, RUN)


def test_labels_given_for_a_run_must_be_its_own_in_order():
    check_labels(["Healthy", "Unhealthy"], RUN)
    with pytest.raises(ForeignModelError, match="inverted"):
        check_labels(["Unhealthy", "Healthy"], RUN)


def test_a_twin_from_another_model_is_refused():
    check_twin(Path("q.tflite"), metadata(), Path("f.tflite"), metadata(precision="float32"))
    with pytest.raises(ForeignModelError, match="not the twin"):
        check_twin(Path("q.tflite"), metadata(), Path("f.tflite"), metadata(model_sha256="c" * 64))
    with pytest.raises(ForeignModelError, match="no artery-edge metadata"):
        check_twin(Path("q.tflite"), metadata(), Path("f.tflite"), None)


@pytest.mark.parametrize("labels, message", [
    ("A,A", "duplicate label"), ("A", "two or more"), ("A,", "two or more"), ("", "two or more"),
])
def test_convert_labels_are_checked_up_front(tmp_path, labels, message):
    source = tmp_path / "model.keras"
    source.write_bytes(b"not loaded: refused before")
    result = runner.invoke(app, ["convert", str(source), "--labels", labels])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_foreign_reference_is_one_error_line(model, tmp_path):
    foreign = build_tiny_classifier(tmp_path / "other.tflite")  # no metadata at all
    result = runner.invoke(app, ["inspect", str(model), "--report", "--reference", str(foreign)])
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1 and "no artery-edge metadata" in lines[0], result.output


def test_a_model_as_its_own_reference_is_named_as_such(model):
    result = runner.invoke(app, ["inspect", str(model), "--report", "--reference", str(model)])
    assert result.exit_code == 1 and "itself" in one_error_line(result), result.output  # was: "is a float32 model"


# --- options: ranges before any work -----------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["evaluate", "--run", "RUN"], ["explain", "--run", "RUN", "--image", "x.png"],
    ["convert", "RUN/model.keras", "--labels", "A,B", "--quantize", "float32"],
])
def test_an_out_under_a_regular_file_is_refused_before_any_work(tmp_path, command):
    """Found by the probes: evaluate and explain did all their work, then failed with
    'file exists: PLAIN' (mkdir of the file's name); now 'not a directory' before any model loads."""
    plain = tmp_path / "plain"
    plain.write_text("a file, not a folder")
    args = [a.replace("RUN", str(tmp_path / "absent-run")) for a in command]  # never read: refused first
    result = runner.invoke(app, [*args, "--out", str(plain / "sub" / "out")])
    assert result.exit_code == 1, result.output
    assert one_error_line(result).startswith(f"error: not a directory: {plain / 'sub' / 'out'}"), result.output


def test_a_folder_that_cannot_be_made_fails_before_it_is_filled(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic.check_can_create(tmp_path / "a" / "b" / "c")  # missing parents are made later: fine
    filled = []
    for base in (plain / "ev", plain / "x" / "ev"):
        with pytest.raises(NotADirectoryError) as error:
            atomic.new_folder(base, filled.append)
        assert error.value.filename == str(base)
    assert filled == [] and plain.read_text() == "x"


@pytest.mark.parametrize("args, message", [
    (["--video", "absent.mp4", "--no-display", "--every", "0"], "--every must be at least 1"),
    (["--video", "absent.mp4", "--no-display", "--frames", "-1"], "--frames must be at least 1"),
    (["--video", "absent.mp4", "--no-display", "--frames", "0"], "--frames must be at least 1"),
    (["--video", "absent.mp4", "--no-display", "--crop", "side"], "--crop must be one of"),
    (["--image", "x.png", "--every", "2"], "--every applies to --camera / --video only"),
    (["--image", "x.png", "--frames", "2-"], "--frames must be frame numbers from 1 and ranges"),
    (["--video", "absent.mp4", "--no-display", "--frames", "2,3"], "--frames must be a number of frames"),
])
def test_stream_options_are_option_errors_not_file_errors(tmp_path, args, message):
    absent = tmp_path / "absent.tflite"  # never opened: the options are refused first
    result = runner.invoke(app, ["infer", "--model", str(absent), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_inspect_report_options_without_report_are_refused(model):
    result = runner.invoke(app, ["inspect", str(model), "--count", "3"])
    assert result.exit_code == 2 and "apply to --report only" in result.output


def test_grad_cam_overlays_never_share_a_name():
    from artery_edge.trainer.explain import overlay_names

    paths = [Path("a/x.png"), Path("b/x.png"), Path("x.jpg"), Path("x_gradcam.png"), Path("y.png")]
    names = overlay_names(paths)
    assert len(set(names)) == len(names) and names[:3] == ["x_gradcam.png", "x_gradcam-2.png", "x_gradcam-3.png"]


def test_a_grad_cam_layer_with_a_1x1_map_is_refused_and_a_coarse_one_warned(capsys):
    from types import SimpleNamespace

    from artery_edge.trainer.explain import check_map_size

    sides = {"block_1_project": 16, "block_13_expand_relu": 2, "out_relu": 1}
    base = SimpleNamespace(get_layer=lambda name: SimpleNamespace(
        output=SimpleNamespace(shape=(None, sides[name], sides[name], 8))))
    check_map_size(base, "block_1_project", list(sides))
    assert capsys.readouterr().err == ""
    check_map_size(base, "block_13_expand_relu", list(sides))
    assert "warning:" in capsys.readouterr().err
    with pytest.raises(OptionError, match="1 x 1.*block_1_project"):
        check_map_size(base, "out_relu", list(sides))


def test_a_file_given_twice_is_classified_once(tmp_path):
    from artery_edge.edge.batch import expand_inputs

    image = save_png(tmp_path / "d" / "a.png")
    files, _ = expand_inputs([image, tmp_path / "d", tmp_path / "d" / "." / "a.png"])
    assert files == [image]


# --- terminal writers: names from files cannot add or overwrite lines -------------------------

def test_file_names_with_newlines_stay_on_their_row(model, tmp_path):
    for name in ("a\nerror: fake.png", "b\rc.png", "\x1b[2Jd.png"):
        save_png(tmp_path / "imgs" / name)
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "imgs")])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "imgs/" in line]
    assert len(rows) == 3 and "\x1b" not in result.stdout and "\r" not in result.stdout
    assert not any(line.startswith("error:") for line in result.output.splitlines())


def test_metadata_cannot_spoof_lines_of_inspect(tmp_path):
    evil = build_tiny_classifier(tmp_path / "evil.tflite", metadata=ModelMetadata(
        labels=["Healthy", "Unhealthy"], input_size=8, precision="int8\nlabels: spoofed",
        artery_edge_version="1\r\x1b[2K", created="x\nops: none"))
    honest = build_tiny_classifier(tmp_path / "honest.tflite", metadata=ModelMetadata(
        labels=["Healthy", "Unhealthy"], input_size=8, precision="int8"))
    shown = [runner.invoke(app, ["inspect", str(m)]).stdout for m in (evil, honest)]
    assert len(shown[0].splitlines()) == len(shown[1].splitlines())
    assert "\x1b" not in shown[0] and "\r" not in shown[0] and "labels: spoofed" in shown[0].splitlines()[0]


def test_a_label_with_a_newline_is_refused_like_convert_refuses_it(tmp_path):
    """Class names follow one rule wherever they are read (edge.model_record.check_labels)."""
    evil = build_tiny_classifier(tmp_path / "evil.tflite", metadata=ModelMetadata(
        labels=["Healthy\nops: none", "Unhealthy"], input_size=8, precision="int8"))
    result = runner.invoke(app, ["inspect", str(evil)])
    assert result.exit_code == 1 and "malformed artery_edge metadata" in result.output
    assert "printable" in result.output and len(result.output.strip().splitlines()) == 1


def test_an_error_naming_a_file_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "artery_edge.cli", "infer", "--model", str(tmp_path / "a\nb.tflite"),
                             "--image", "x.png"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "a\\nb.tflite" in one_error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1


# --- every file atomic -------------------------------------------------------------------------

def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        atomic.write_bytes(target, b"ours", overwrite=False)
    assert target.read_bytes() == b"theirs" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(FileNotFoundError) as error:
        atomic.write_text(tmp_path / "absent" / "x.txt", "x")
    assert error.value.filename == str(tmp_path / "absent" / "x.txt")  # the name asked for, not the temporary


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    def fill(folder: Path) -> str:
        (folder / "a.txt").write_text("a")
        return "done"

    def fail_half_way(folder: Path) -> None:
        (folder / "a.txt").write_text("a")
        raise RuntimeError("the model card writer crashed")

    with pytest.raises(RuntimeError):
        atomic.new_folder(tmp_path / "evaluation", fail_half_way)
    assert list(tmp_path.iterdir()) == []
    first, result = atomic.new_folder(tmp_path / "evaluation", fill)
    (tmp_path / "evaluation-2").mkdir()  # an empty folder someone made is never taken
    second, _ = atomic.new_folder(tmp_path / "evaluation", fill)
    assert (first.name, second.name, result) == ("evaluation", "evaluation-3", "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation", "evaluation-2", "evaluation-3"]


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale, mine = tmp_path / f".model_int8.tflite.{dead}.tmp", atomic.temp_name(tmp_path / "model_int8.tflite")
    stale.write_bytes(b"killed")
    mine.write_bytes(b"being written")
    assert atomic.remove_stale(tmp_path, "model_int8.tflite") == [stale] and mine.exists()


# --- EXIF orientation: applied in the one loader training and the device share ----------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_for_every_pipeline(tmp_path, orientation):
    from PIL import ImageOps

    from artery_edge.edge.imaging import load_image

    pixels = np.zeros((12, 20, 3), np.uint8)
    pixels[:4, :6] = (255, 0, 0)  # a red corner shows any turn or flip
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB").resize((8, 8), Image.BILINEAR))
    assert np.array_equal(load_image(path, 8), expected)
    assert np.array_equal(load_image(Image.open(path), 8), expected)  # a Pillow image given directly: the same
    if orientation in (5, 6, 7, 8):  # a quarter turn: the stored 20 x 12 is shown 12 x 20
        from artery_edge.edge.imaging import open_image

        assert open_image(path).size == (12, 20)
