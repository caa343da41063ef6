"""Issue 22's probes of evaluate / convert / explain / inspect / infer / benchmark, in one process
(TensorFlow imported once): each case a command as a user types it, judged against what should
happen. tests/probes.md holds the table (before / now).

usage: python tests/probes/probe_outputs.py FIXTURES OUT.json ["prefix|prefix"]   (prefixes: which cases, in that order)
Run from the source tree under test (cwd first on sys.path); fixtures from tests/probes/probe_fixtures.py.
The TF-free cases (infer:, inspect:, benchmark:, edge.imaging) need only its .tflite and image files.
PROBE_SKIP="prefix|prefix" leaves cases out (an old tree's --bootstrap 100000000 would allocate
~10 GB at once); PROBE_CASE_LIMIT=SECONDS stops a case that runs longer (an old tree that starts
work an option check should have refused). Cases already in OUT.json are kept and not run again
(a run cut short resumes); cases that give the same command share one invocation (their checks
read the same output).
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from typer.testing import CliRunner  # noqa: E402

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge.precisions import PRECISIONS  # noqa: E402
from probe_harness import case, choose, invoker, one_error, run_cases  # noqa: E402 - beside this script

FX = Path(sys.argv[1])
OUT = Path(sys.argv[2])
ONLY = tuple(sys.argv[3].split("|")) if len(sys.argv) > 3 else ()
WORK = FX / f"work-{os.getpid()}"
WORK.mkdir()
run = invoker(CliRunner(), app)
R1, R2, R3, R4 = FX / "r1", FX / "r2", FX / "r3", FX / "r4"
IMG = FX / "imgs"
F32, DYN = PRECISIONS["float32"].file_name, PRECISIONS["dynamic"].file_name


def fresh(name):
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------- convert ----------------
@case("convert: run Healthy,Unhealthy with --labels Unhealthy,Healthy", "refused, one error line, no file")
def _():
    out = fresh("c1")
    r = run("convert", R1, "--quantize", "float32", "--labels", "Unhealthy,Healthy", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: --labels A,A", "refused before loading (exit 2)")
def _():
    out = fresh("c2")
    r = run("convert", R1, "--quantize", "float32", "--labels", "A,A", "--out", out)
    return one_error(r, 2) and not list(out.glob("*.tflite")), r


@case("convert: --labels equal to the run's", "converts")
def _():
    out = fresh("c3")
    r = run("convert", R1, "--quantize", "float32", "--labels", "Healthy,Unhealthy", "--out", out)
    return r["code"] == 0 and (out / F32).is_file(), r


@case("convert: --labels 'Healthy, Unhealthy' (spaces)", "converts (names stripped)")
def _():
    out = fresh("c4")
    r = run("convert", R1, "--quantize", "float32", "--labels", "Healthy, Unhealthy", "--out", out)
    return r["code"] == 0, r


@case("convert: --labels A (one name, run)", "refused, one error line")
def _():
    out = fresh("c5")
    r = run("convert", R1, "--quantize", "float32", "--labels", "A", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: --labels '' (empty)", "refused, one error line")
def _():
    out = fresh("c6")
    r = run("convert", R1, "--quantize", "float32", "--labels", "", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: --labels Healthy,Unhealthy,Extra on a 2-class run", "refused, one error line")
def _():
    out = fresh("c7")
    r = run("convert", R1, "--quantize", "float32", "--labels", "Healthy,Unhealthy,Extra", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: --labels with a newline in a name", "refused, one error line")
def _():
    out = fresh("c8")
    src = fresh("c8src")
    shutil.copy(R1 / "model.keras", src / "model.keras")
    r = run("convert", src / "model.keras", "--quantize", "float32", "--labels", "A\nerror: x,B", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: model.keras outside a run with --labels A,B", "converts, labels A,B")
def _():
    src = fresh("c9")
    shutil.copy(R1 / "model.keras", src / "model.keras")
    r = run("convert", src / "model.keras", "--quantize", "float32", "--labels", "A,B")
    return r["code"] == 0 and (src / F32).is_file(), r


@case("convert: model.keras outside a run without --labels", "refused, one error line")
def _():
    src = fresh("c10")
    shutil.copy(R1 / "model.keras", src / "model.keras")
    r = run("convert", src / "model.keras", "--quantize", "float32")
    return one_error(r) and not list(src.glob("*.tflite")), r


@case("convert: a truncated model.keras", "one error line, nothing written")
def _():
    src = fresh("c11")
    data = (R1 / "model.keras").read_bytes()
    (src / "model.keras").write_bytes(data[: len(data) // 2])
    r = run("convert", src / "model.keras", "--quantize", "float32", "--labels", "A,B")
    return one_error(r) and not list(src.glob("*.tflite")), r


@case("convert: a text file named model.keras", "one error line")
def _():
    src = fresh("c12")
    (src / "model.keras").write_text("hello")
    r = run("convert", src / "model.keras", "--quantize", "float32", "--labels", "A,B")
    return one_error(r), r


@case("convert: existing target without --force", "refused, existing file untouched")
def _():
    out = fresh("c13")
    (out / F32).write_bytes(b"theirs")
    r = run("convert", R1, "--quantize", "float32", "--out", out)
    return one_error(r) and (out / F32).read_bytes() == b"theirs", r


@case("convert: float32,int8 where int8 calibration data has no images", "nothing written, not even float32")
def _():
    out = fresh("c14")
    empty = fresh("c14empty")
    r = run("convert", R1, "--quantize", "float32,int8", "--calibration-data", empty, "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: --out under a regular file", "one error line: not a directory, before the model loads")
def _():
    plain = WORK / "c15plain"
    plain.write_text("x")
    r = run("convert", R1, "--quantize", "float32", "--out", plain / "sub")
    return one_error(r, 1, "not a directory"), r


@case("convert: run whose model.keras takes another input size than run.json", "refused as foreign")
def _():
    out = fresh("c16")
    r = run("convert", R4, "--quantize", "float32", "--out", out)
    return one_error(r) and not list(out.glob("*.tflite")), r


@case("convert: size ratio against a float32 file of another model in --out", "ratio n/a (not that model's twin)")
def _():
    out = fresh("c17")
    shutil.copy(FX / "foreign.tflite", out / F32)
    r = run("convert", R1, "--quantize", "dynamic", "--out", out, "--json")
    try:
        rows = json.loads(r["stdout"])
    except ValueError:
        return False, r
    return r["code"] == 0 and rows[0]["ratio_to_float32"] is None, r


@case("convert: --quantize bogus", "exit 2, one error line")
def _():
    r = run("convert", R1, "--quantize", "bogus")
    return one_error(r, 2), r


@case("convert: --calibration-images 0", "exit 2")
def _():
    r = run("convert", R1, "--quantize", "int8", "--calibration-images", "0")
    return one_error(r, 2), r


@case("convert: nonexistent source", "one error line")
def _():
    r = run("convert", WORK / "absent", "--quantize", "float32")
    return one_error(r), r


# ---------------- evaluate ----------------
def card(folder):
    return (folder / "MODEL_CARD.md").read_text() if (folder / "MODEL_CARD.md").is_file() else ""


@case("evaluate: --threshold 0.3: card names 0.3 as used", "card: threshold 0.3 used; table 0.3000")
def _():
    out = WORK / "e1"
    r = run("evaluate", "--run", R1, "--threshold", "0.3", "--bootstrap", "20", "--out", out)
    text = card(out)
    return r["code"] == 0 and "0.3000" in text and "every model at threshold 0.3" in text, r


@case("evaluate: --threshold 0.3 --bootstrap 20: Reproduce line keeps the options", "--threshold 0.3 --bootstrap 20 in it")
def _():
    out = WORK / "e1"  # the command of the case above
    r = run("evaluate", "--run", R1, "--threshold", "0.3", "--bootstrap", "20", "--out", out)
    line = next((l for l in card(out).splitlines() if l.startswith("Reproduce")), "")
    return r["code"] == 0 and "--threshold 0.3" in line and "--bootstrap 20" in line, r


@case("evaluate: --threshold with --target-sensitivity", "exit 2, one error line")
def _():
    r = run("evaluate", "--run", R1, "--threshold", "0.3", "--target-sensitivity", "0.9")
    return one_error(r, 2), r


@case("evaluate: --threshold 0 --prevalence 0.2 (all positive, NPV undefined)", "exit 0, card with NPV n/a")
def _():
    out = WORK / "e4"
    r = run("evaluate", "--run", R1, "--threshold", "0", "--prevalence", "0.2", "--bootstrap", "20", "--out", out)
    return r["code"] == 0 and "NPV n/a" in card(out), r


@case("evaluate: --threshold 0 --prevalence 0.2 --json", "JSON printed")
def _():
    out = WORK / "e5"
    r = run("evaluate", "--run", R1, "--threshold", "0", "--prevalence", "0.2", "--bootstrap", "20", "--out", out, "--json")
    try:
        json.loads(r["stdout"])
    except ValueError:
        return False, r
    return r["code"] == 0, r


@case("evaluate: crash while writing leaves no folder (--threshold 0 --prevalence 0.2, before: card crash)", "no half-written folder")
def _():
    out = WORK / "e4"  # the command of the NPV case above
    r = run("evaluate", "--run", R1, "--threshold", "0", "--prevalence", "0.2", "--bootstrap", "20", "--out", out)
    return (r["code"] == 0 and card(out) != "") or (r["code"] != 0 and not out.exists()), r


@case("evaluate: --threshold 1 (all negative, PPV undefined) --prevalence 0.3", "exit 0, PPV n/a")
def _():
    out = WORK / "e7"
    r = run("evaluate", "--run", R1, "--threshold", "1", "--prevalence", "0.3", "--bootstrap", "20", "--out", out)
    return r["code"] == 0 and "n/a" in card(out), r


for value in ("nan", "-0.1", "1.5", "inf"):
    @case(f"evaluate: --threshold {value}", "exit 2")
    def _(value=value):
        r = run("evaluate", "--run", R1, "--threshold", value)
        return one_error(r, 2), r

for value in ("0", "nan", "1.01"):
    @case(f"evaluate: --target-sensitivity {value}", "exit 2")
    def _(value=value):
        r = run("evaluate", "--run", R1, "--target-sensitivity", value)
        return one_error(r, 2), r

for value in ("0", "1", "nan", "-1"):
    @case(f"evaluate: --prevalence {value}", "exit 2")
    def _(value=value):
        r = run("evaluate", "--run", R1, "--prevalence", value)
        return one_error(r, 2), r

for value in ("0", "-3", "100000000"):
    @case(f"evaluate: --bootstrap {value}", "exit 2, before any work")
    def _(value=value):
        r = run("evaluate", "--run", R1, "--bootstrap", value)
        return one_error(r, 2), r


@case("evaluate: --models .tflite of another model (other source sha256)", "refused, one error line")
def _():
    r = run("evaluate", "--run", R1, "--models", FX / "foreign.tflite", "--out", WORK / "e10")
    return one_error(r) and not (WORK / "e10").exists(), r


@case("evaluate: --models .tflite with the run's classes swapped", "refused")
def _():
    r = run("evaluate", "--run", R1, "--models", FX / "swapped.tflite", "--out", WORK / "e11")
    return one_error(r) and not (WORK / "e11").exists(), r


@case("evaluate: --models .tflite without metadata", "one error line")
def _():
    r = run("evaluate", "--run", R1, "--models", FX / "nometa.tflite", "--out", WORK / "e12")
    return one_error(r) and not (WORK / "e12").exists(), r


@case("evaluate: --models of run r1 against run r2 (same classes, other model.keras)", "refused as foreign")
def _():
    r = run("evaluate", "--run", R2, "--models", R1 / F32, "--out", WORK / "e13")
    return one_error(r) and not (WORK / "e13").exists(), r


@case("evaluate: the same --models file twice", "exit 2 (or one column), not a silently merged column")
def _():
    r = run("evaluate", "--run", R1, "--models", R1 / F32, "--models", R1 / F32,
            "--out", WORK / "e14")
    return one_error(r, 2), r


@case("evaluate: two copies of the float32 file in two folders", "two columns (float32, float32-2)")
def _():
    a, b = fresh("e15a"), fresh("e15b")
    shutil.copy(R1 / F32, a)
    shutil.copy(R1 / F32, b)
    r = run("evaluate", "--run", R1, "--models", a / F32, "--models", b / F32,
            "--bootstrap", "10", "--out", WORK / "e15", "--json")
    try:
        names = list(json.loads(r["stdout"])["models"])
    except (ValueError, KeyError):
        return False, r
    return names == ["keras", "float32", "float32-2"], r


@case("evaluate: a .tflite named keras.tflite", "its own column, Keras' not replaced")
def _():
    a = fresh("e16a")
    shutil.copy(R1 / F32, a / "keras.tflite")
    r = run("evaluate", "--run", R1, "--models", a / "keras.tflite", "--bootstrap", "10", "--out", WORK / "e16", "--json")
    try:
        names = list(json.loads(r["stdout"])["models"])
    except (ValueError, KeyError):
        return False, r
    return len(names) == 2, r


@case("evaluate: --models nonexistent file", "one error line")
def _():
    r = run("evaluate", "--run", R1, "--models", WORK / "absent.tflite")
    return one_error(r), r


@case("evaluate: --models a PNG named .tflite", "one error line")
def _():
    fake = WORK / "fake.tflite"
    shutil.copy(next(IMG.glob("*.png")), fake)
    r = run("evaluate", "--run", R1, "--models", fake, "--out", WORK / "e18")
    return one_error(r) and not (WORK / "e18").exists(), r


@case("evaluate: run with a truncated model.keras", "one error line, nothing written")
def _():
    run_dir = WORK / "e19run"
    shutil.copytree(R1, run_dir, ignore=shutil.ignore_patterns("*.tflite", "evaluation*", "explain*"))
    data = (run_dir / "model.keras").read_bytes()
    (run_dir / "model.keras").write_bytes(data[: len(data) // 3])
    r = run("evaluate", "--run", run_dir)
    return one_error(r) and not (run_dir / "evaluation").exists(), r


@case("evaluate: --out under a regular file", "one error line: not a directory, before any work")
def _():
    plain = WORK / "e20plain"
    plain.write_text("x")
    r = run("evaluate", "--run", R1, "--bootstrap", "10", "--out", plain / "ev")
    return one_error(r, 1, "not a directory"), r


@case("evaluate: --out exists", "a new folder -2 beside it, the old kept")
def _():
    out = fresh("e21")
    (out / "keep.txt").write_text("x")
    r = run("evaluate", "--run", R1, "--bootstrap", "10", "--out", out)
    return r["code"] == 0 and (WORK / "e21-2" / "MODEL_CARD.md").is_file() and (out / "keep.txt").is_file(), r


@case("evaluate: class folders with HTML, | and newline: MODEL_CARD.md", "escaped: no raw <img, no extra cells")
def _():
    out = WORK / "e22"
    r = run("evaluate", "--run", R3, "--bootstrap", "10", "--out", out)
    text = card(out)
    prose = re.sub(r"(`+).*?\1", "", text)
    return r["code"] == 0 and "<img" not in prose and "&lt;img" in text, r


@case("evaluate: class folders with HTML: report.md", "escaped")
def _():
    out = WORK / "e22"  # the command of the MODEL_CARD.md case
    r = run("evaluate", "--run", R3, "--bootstrap", "10", "--out", out)
    text = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
    prose = re.sub(r"(`+).*?\1", "", text)
    return r["code"] == 0 and "<img" not in prose and "&lt;img" in text, r


@case("evaluate: class name with $\\foo$ (mathtext) in the plots", "plots drawn, exit 0")
def _():
    out = WORK / "e22"  # the command of the MODEL_CARD.md case
    r = run("evaluate", "--run", R3, "--bootstrap", "10", "--out", out)
    return r["code"] == 0 and (out / "roc.png").is_file(), r


@case("evaluate: a failure while writing (plot crash) leaves no folder", "no evaluation folder")
def _():
    out = WORK / "e22"  # the command of the MODEL_CARD.md case
    r = run("evaluate", "--run", R3, "--bootstrap", "10", "--out", out)
    return r["code"] == 0 or not out.exists(), r


@case("evaluate: class name with newline in the terminal table", "table rows intact (no raw newline inside a row)")
def _():
    r = run("evaluate", "--run", R3, "--bootstrap", "10", "--out", WORK / "e22")
    rows = [l for l in r["stdout"].splitlines() if l.startswith("|")]
    return r["code"] == 0 and all(l.endswith("|") for l in rows) and len(rows) >= 10, r


@case("evaluate: --data with other classes", "one error line")
def _():
    other = fresh("e27data")
    for c in ("Cats", "Dogs"):
        (other / c).mkdir()
        shutil.copy(next(IMG.glob("*.png")), other / c / "a.png")
    r = run("evaluate", "--run", R1, "--data", other)
    return one_error(r), r


@case("evaluate: --run missing", "one error line")
def _():
    r = run("evaluate", "--run", WORK / "absent")
    return one_error(r), r


@case("evaluate: run dir name with a space and backtick: Reproduce line quoted", "shell-quoted, code span intact")
def _():
    run_dir = WORK / "my `run` x"
    shutil.copytree(R1, run_dir, ignore=shutil.ignore_patterns("*.tflite", "evaluation*", "explain*"))
    r = run("evaluate", "--run", run_dir, "--bootstrap", "10")
    line = next((l for l in card(run_dir / "evaluation").splitlines() if l.startswith("Reproduce")), "")
    return r["code"] == 0 and "'" in line and "``" in line, r


@case("evaluate: --target-sensitivity 0.9", "exit 0, card names the rule")
def _():
    out = WORK / "e30"
    r = run("evaluate", "--run", R1, "--target-sensitivity", "0.9", "--bootstrap", "10", "--out", out)
    return r["code"] == 0 and "sensitivity 0.9" in card(out), r


# ---------------- explain ----------------
@case("explain: --layer out_relu (1x1 map at 32 px)", "refused (exit 2) or warned")
def _():
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--layer", "out_relu", "--out", WORK / "x1")
    return one_error(r, 2) and not (WORK / "x1").exists(), r


@case("explain: --layer with a 2x2 map", "warning line, overlays written")
def _():
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--layer", "block_12_project_BN", "--out", WORK / "x2")
    return r["code"] == 0 and "warning:" in r["out"], r


@case("explain: default layer", "exit 0, overlay + grid")
def _():
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--out", WORK / "x3")
    return r["code"] == 0 and (WORK / "x3" / "gradcam_grid.png").is_file(), r


@case("explain: two images with one stem in two folders", "two overlays")
def _():
    r = run("explain", "--run", R1, "--image", FX / "same" / "a" / "x.png", "--image", FX / "same" / "b" / "x.png",
            "--out", WORK / "x4")
    return r["code"] == 0 and len(list((WORK / "x4").glob("*_gradcam*.png"))) == 2, r


@case("explain: the same image twice", "one overlay")
def _():
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--image", IMG / "a.png", "--out", WORK / "x5")
    return r["code"] == 0 and len(list((WORK / "x5").glob("*_gradcam*.png"))) == 1 and "(1 images" in r["out"], r


@case("explain: --layer bogus", "one error line, nothing written")
def _():
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--layer", "bogus", "--out", WORK / "x6")
    return one_error(r) and not (WORK / "x6").exists(), r


@case("explain: --image nonexistent", "one error line, nothing written")
def _():
    r = run("explain", "--run", R1, "--image", WORK / "absent.png", "--out", WORK / "x7")
    return one_error(r) and not (WORK / "x7").exists(), r


@case("explain: --out under a regular file", "one error line: not a directory, before any work")
def _():
    plain = WORK / "x8plain"
    plain.write_text("x")
    r = run("explain", "--run", R1, "--image", IMG / "a.png", "--out", plain / "x")
    return one_error(r, 1, "not a directory"), r


@case("explain: image file name with newline", "printed on one line")
def _():
    r = run("explain", "--run", R1, "--image", FX / "odd" / "b\nerror: c.png", "--out", WORK / "x9")
    return r["code"] == 0 and not any(l.startswith("error:") for l in r["out"].splitlines()), r


@case("explain: run with truncated model.keras", "one error line")
def _():
    run_dir = WORK / "x10run"
    shutil.copytree(R1, run_dir, ignore=shutil.ignore_patterns("*.tflite", "evaluation*", "explain*"))
    data = (run_dir / "model.keras").read_bytes()
    (run_dir / "model.keras").write_bytes(data[:1000])
    r = run("explain", "--run", run_dir, "--image", IMG / "a.png")
    return one_error(r) and not (run_dir / "explain").exists(), r


@case("explain: --json names each overlay", "overlay path per image")
def _():
    r = run("explain", "--run", R1, "--image", FX / "same" / "a" / "x.png", "--image", FX / "same" / "b" / "x.png",
            "--out", WORK / "x11", "--json")
    try:
        images = json.loads(r["stdout"])["images"]
    except (ValueError, KeyError):
        return False, r
    return len({i.get("overlay") for i in images}) == 2, r


@case("explain: class folder names with $\\foo$ in the grid titles", "grid drawn")
def _():
    r = run("explain", "--run", R3, "--image", IMG / "a.png", "--out", WORK / "x12")
    return r["code"] == 0 and (WORK / "x12" / "gradcam_grid.png").is_file(), r


@case("explain: EXIF-rotated JPEG explained upright", "overlay of the upright image")
def _():
    r = run("explain", "--run", R1, "--image", FX / "exif" / "rot6.jpg", "--out", WORK / "x13")
    overlay = WORK / "x13" / "rot6_gradcam.png"
    return r["code"] == 0 and overlay.is_file(), r


# ---------------- inspect --report ----------------
@case("inspect --report --reference without metadata (foreign)", "one error line")
def _():
    r = run("inspect", R1 / DYN, "--report", "--reference", FX / "nometa.tflite", "--out", WORK / "i1")
    return one_error(r) and not (WORK / "i1").exists(), r


@case("inspect --report --reference float32 of another model", "one error line (not its twin)")
def _():
    r = run("inspect", R1 / DYN, "--report", "--reference", FX / "foreign.tflite", "--out", WORK / "i2")
    return one_error(r) and not (WORK / "i2").exists(), r


@case("inspect --report --reference a quantized file (its own dynamic, copied)", "one error line (not float32)")
def _():
    copy = fresh("i3") / "copy.tflite"
    shutil.copy(R1 / DYN, copy)
    r = run("inspect", R1 / DYN, "--report", "--reference", copy, "--out", WORK / "i3out")  # never into the fixture
    return one_error(r, None, "not the float32 twin"), r


@case("inspect --report --reference the model itself", "one error line saying it is the same file")
def _():
    r = run("inspect", R1 / DYN, "--report", "--reference", R1 / DYN)
    return one_error(r, None, "itself"), r


@case("inspect --report --reference a PNG", "one error line")
def _():
    r = run("inspect", R1 / DYN, "--report", "--reference", next(IMG.glob("*.png")))
    return one_error(r), r


@case("inspect --report --count 0", "exit 2")
def _():
    r = run("inspect", R1 / DYN, "--report", "--count", "0")
    return one_error(r, 2), r


@case("inspect --count 3 without --report", "exit 2 (option ignored otherwise)")
def _():
    r = run("inspect", R1 / DYN, "--count", "3")
    return one_error(r, 2), r


@case("inspect --report: its twin, default images", "exit 0, report + chart")
def _():
    r = run("inspect", R1 / DYN, "--report", "--count", "2", "--out", WORK / "i7")
    return r["code"] == 0 and (WORK / "i7" / "layer_report.md").is_file(), r


@case("inspect --report: a model copied into another run's folder, default images", "refused: pass --data")
def _():
    folder = WORK / "i8run"
    shutil.copytree(R2, folder, ignore=shutil.ignore_patterns("*.tflite", "evaluation*"))
    shutil.copy(R1 / DYN, folder)
    shutil.copy(R1 / F32, folder)
    r = run("inspect", folder / DYN, "--report", "--count", "2", "--out", WORK / "i8")
    return one_error(r, None, "--data") and not (WORK / "i8").exists(), r


@case("inspect --report --data empty folder", "one error line")
def _():
    r = run("inspect", R1 / DYN, "--report", "--data", fresh("i9empty"), "--out", WORK / "i9")
    return one_error(r) and not (WORK / "i9").exists(), r


@case("inspect --report --out existing", "a -2 folder beside it")
def _():
    fresh("i10")
    r = run("inspect", R1 / DYN, "--report", "--count", "2", "--out", WORK / "i10")
    return r["code"] == 0 and (WORK / "i10-2" / "layer_report.md").is_file(), r


# ---------------- inspect / infer / benchmark (TF-free) ----------------
@case("inspect: metadata strings with newlines and escapes", "same number of lines as an honest file, no ESC/CR")
def _():
    evil, honest = run("inspect", FX / "evil.tflite"), run("inspect", FX / "nometa_labels.tflite")
    o = evil["stdout"]
    same = len(o.splitlines()) == len(honest["stdout"].splitlines())
    return evil["code"] == 0 and "\x1b" not in o and "\r" not in o and same, evil


@case("inspect: not a .tflite", "one error line")
def _():
    r = run("inspect", next(IMG.glob("*.png")))
    return one_error(r), r


for args, name in [
    (["--video", "v.mp4", "--no-display", "--every", "0"], "--every 0 on video"),
    (["--video", "v.mp4", "--no-display", "--every", "-5"], "--every -5 on video"),
    (["--video", "v.mp4", "--no-display", "--frames", "-1"], "--frames -1 on video"),
    (["--video", "v.mp4", "--no-display", "--frames", "0"], "--frames 0 on video"),
    (["--video", "v.mp4", "--no-display", "--crop", "side"], "--crop side on video"),
    (["--image", "IMG", "--every", "3"], "--every with --image"),
    (["--image", "IMG", "--frames", "3"], "--frames with --image"),
    (["--image", "IMG", "--threshold", "nan"], "--threshold nan"),
    (["--image", "IMG", "--threshold", "1.5"], "--threshold 1.5"),
    (["--image", "IMG", "--threads", "0"], "--threads 0"),
    (["--camera", "-1", "--no-display"], "--camera -1"),
    (["--camera", "x", "--no-display"], "--camera x"),
]:
    @case(f"infer: {name}", "exit 2, an option error (not blamed on a file)")
    def _(args=args):
        args = [str(IMG) if a == "IMG" else a for a in args]
        r = run("infer", "--model", FX / "tiny.tflite", *args)
        return one_error(r, 2) and "v.mp4" not in r["errors"][0], r


@case("infer: file names with \\n, \\r and ESC in the table", "one row per file, no raw control characters")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", FX / "odd")
    o = r["stdout"]
    rows = [l for l in o.splitlines() if "odd/" in l]
    return r["code"] == 0 and len(rows) == 3 and "\x1b" not in o and "\r" not in o, r


@case("infer: file name holding 'error: ...' after a newline", "no fake error line")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", FX / "odd")
    return r["code"] == 0 and not any(l.startswith("error:") for l in r["out"].splitlines()), r


@case("infer: a corrupt image whose name has a newline", "one error line for it")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", FX / "odd_bad")
    return r["code"] == 1 and len(r["errors"]) == 1, r


@case("infer: --model path with a newline (missing)", "one error line")
def _():
    r = run("infer", "--model", WORK / "a\nb.tflite", "--image", IMG / "a.png")
    return one_error(r), r


@case("infer: metadata labels with newlines and ESC", "header and rows escaped")
def _():
    r = run("infer", "--model", FX / "evil.tflite", "--image", IMG / "a.png")
    o = r["stdout"]
    return r["code"] == 0 and "\x1b" not in o and len(o.strip().splitlines()) == 2, r


@case("infer: metadata precision with a newline on stderr", "one line")
def _():
    r = run("infer", "--model", FX / "evil.tflite", "--image", IMG / "a.png")
    return "\nlabels: spoof" not in r["out"], r


@case("infer: --labels A,A for a model without metadata", "one error line")
def _():
    r = run("infer", "--model", FX / "nometa.tflite", "--image", IMG / "a.png", "--labels", "A,A")
    return one_error(r), r


@case("infer: --labels 'A,' for a model without metadata", "one error line")
def _():
    r = run("infer", "--model", FX / "nometa.tflite", "--image", IMG / "a.png", "--labels", "A,")
    return one_error(r), r


@case("infer: --labels swapped for a model with metadata", "one error line")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG / "a.png", "--labels", "Unhealthy,Healthy")
    return one_error(r), r


@case("infer: the same file twice", "classified once")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG / "a.png", "--image", IMG / "a.png", "--json")
    try:
        return len(json.loads(r["stdout"])["results"]) == 1, r
    except ValueError:
        return False, r


@case("infer: a file and its folder", "each file once")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG / "a.png", "--image", IMG, "--json")
    try:
        return len(json.loads(r["stdout"])["results"]) == len(list(IMG.glob("*.png"))), r
    except ValueError:
        return False, r


@case("infer: --csv exists", "refused, file untouched")
def _():
    target = WORK / "n1.csv"
    target.write_text("precious")
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG, "--csv", target)
    return one_error(r) and target.read_text() == "precious", r


@case("infer: --csv in a missing folder", "one error line naming the CSV (not a temporary)")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG, "--csv", WORK / "nodir" / "x.csv")
    return one_error(r, None, "x.csv") and ".tmp" not in r["errors"][0], r


@case("infer: --csv written whole (no temporary left)", "CSV complete, no .tmp beside it")
def _():
    folder = fresh("n3")
    r = run("infer", "--model", FX / "tiny.tflite", "--image", IMG, "--csv", folder / "x.csv")
    return r["code"] == 0 and [p.name for p in folder.iterdir()] == ["x.csv"], r


@case("edge.imaging.load_image: EXIF orientation 6 JPEG vs the same pixels stored upright", "identical model input")
def _():
    import numpy as np

    from artery_edge.edge.imaging import load_image

    a, b = load_image(FX / "exif" / "rot6.jpg", 32), load_image(FX / "exif" / "upright.png", 32)
    same = a.shape == b.shape and bool(np.array_equal(a, b))
    return same, {"code": 0, "out": f"max |diff| {int(np.abs(a.astype(int) - b.astype(int)).max())}", "errors": [],
                  "traceback": False}


@case("infer: --video missing file", "one error line naming the video")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--video", WORK / "absent.mp4", "--no-display")
    return one_error(r, 1, "absent.mp4"), r


@case("benchmark: --runs 0", "exit 2")
def _():
    r = run("benchmark", "--model", FX / "tiny.tflite", "--runs", "0")
    return one_error(r, 2), r


@case("benchmark: --labels A,A for a model without metadata", "one error line")
def _():
    r = run("benchmark", "--model", FX / "nometa.tflite", "--labels", "A,A", "--runs", "1", "--warmup", "0")
    return one_error(r), r


@case("benchmark: --model path with a newline (missing)", "one error line")
def _():
    r = run("benchmark", "--model", WORK / "a\nb.tflite")
    return one_error(r), r


results = json.loads(OUT.read_text()) if OUT.is_file() else []
LIMIT = int(os.environ.get("PROBE_CASE_LIMIT", "0"))  # 0: no limit
run_cases(choose(ONLY), {r["case"] for r in results}, results, OUT, LIMIT, width=220)
