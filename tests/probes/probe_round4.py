"""Issue 36's probe round (item 3 of "What to build"): hostile and careless input to every
TF-free command and option (infer, scan, serve's checks, benchmark, inspect, synth) and the new
features (scan of frames / folders / videos / DICOM, synth --frames, infer --persist, whole-frame
models live, DICOM into infer), each case a command as a user types it, in one process.
tests/probes.md holds the table.

usage: python tests/probes/probe_round4.py FIXTURES OUT.json ["prefix|prefix"]
Run from the tree under test in the edge venv. Every case also fails on a traceback, an
``np.int32(...)``-like NumPy repr or a raw control character in what the command printed.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, os.getcwd())
from typer.testing import CliRunner  # noqa: E402

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge import ModelMetadata  # noqa: E402
from probe_harness import case, choose, invoker, one_error, run_cases  # noqa: E402 - beside this script
from tests.tflite_builder import build_tiny_classifier, build_tiny_map_model  # noqa: E402

FX = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
ONLY = tuple(sys.argv[3].split("|")) if len(sys.argv) > 3 else ()
LIMIT = int(os.environ.get("PROBE_CASE_LIMIT", "60"))
WORK = FX / f"work-{OUT.stem}"
run = invoker(CliRunner(), app)
TINY, MAP, PNG, FRAME = FX / "tiny.tflite", FX / "map.tflite", FX / "a.png", FX / "frame.png"


def fixtures() -> None:
    """Models, images, odd files, a video and DICOM files; each made once."""
    if (FX / "done").is_file():
        return
    FX.mkdir(parents=True, exist_ok=True)
    build_tiny_classifier(TINY, size=32, metadata=ModelMetadata(labels=["Healthy", "Unhealthy"], input_size=32,
                                                                precision="float32"))
    build_tiny_map_model(MAP, size=32, metadata=ModelMetadata(labels=["stenosis"], input_size=32, precision="float32",
                                                              task="map", threshold=0.5, positive_label="stenosis"))
    build_tiny_classifier(FX / "nometa.tflite", size=32)
    data = TINY.read_bytes()
    (FX / "half.tflite").write_bytes(data[: len(data) // 2])
    (FX / "empty.tflite").write_bytes(b"")
    (FX / "note.txt").write_text("not a model\n")
    (FX / "token").write_text("x" * 32)
    os.chmod(FX / "token", 0o600)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(PNG)
    frame = np.full((96, 128), 200, np.uint8)
    frame[40:60, 50:70] = 20  # a dark blob: a "lesion" for the tiny map model
    Image.fromarray(frame).save(FRAME)
    (FX / "text.png").write_text("hello")
    (FX / "zero.png").write_bytes(b"")
    (FX / "cut.png").write_bytes(PNG.read_bytes()[:60])
    Image.new("1", (9000, 9000)).save(FX / "bomb.png")  # 81 MP in a few KB
    Image.new("RGB", (1, 1)).save(FX / "one.png")
    Image.new("RGB", (5000, 1)).save(FX / "thin.png")
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(FX / "rgba.png")
    Image.new("P", (40, 40)).save(FX / "palette.png")
    Image.new("I;16", (40, 40)).save(FX / "grey16.png")
    Image.new("CMYK", (40, 40)).save(FX / "cmyk.jpg")
    Image.new("RGB", (40, 40)).save(FX / "gif.gif")
    Image.new("RGB", (40, 40)).save(FX / "x.tif")
    for name in ("a\nerror: fake.png", "\x1b[2Jesc.png", "ünï 名.png", "-dash.png", "sp ace.png", "x" * 250 + ".png"):
        (FX / "odd").mkdir(exist_ok=True)
        Image.open(PNG).save(FX / "odd" / name)
    (FX / "empty-dir").mkdir()
    (FX / "only-text").mkdir()
    (FX / "only-text" / "readme.txt").write_text("x")
    (FX / "dangling.png").symlink_to(FX / "absent.png")
    (FX / "loop").mkdir()
    (FX / "loop" / "self").symlink_to(FX / "loop")
    Image.open(FRAME).save(FX / "loop" / "f.png")
    from tests.serve_helpers import write_video

    write_video(FX / "clip.avi", frames=12, fps=25.0, size=(128, 96))
    (FX / "fake.mp4").write_text("not a video")
    (FX / "zero.avi").write_bytes(b"")
    dicoms()
    (FX / "done").write_text("")


def dicoms() -> None:
    """A grey cine, a colour file, a truncated one, a text file named .dcm."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, XRayAngiographicImageStorage, generate_uid

    def write(path: Path, frames: np.ndarray, photometric: str = "MONOCHROME2", samples: int = 1) -> None:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = XRayAngiographicImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.Modality, ds.PatientName = "XA", "Probe^Patient"
        ds.Rows, ds.Columns = frames.shape[1:3]
        ds.NumberOfFrames, ds.SamplesPerPixel, ds.PhotometricInterpretation = len(frames), samples, photometric
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation, ds.FrameTime = 7, 0, 66.7
        if samples == 3:
            ds.PlanarConfiguration = 0
        ds.PixelData = frames.tobytes()
        ds.save_as(path, enforce_file_format=True)

    cine = np.stack([np.asarray(Image.open(FRAME))] * 4)
    write(FX / "cine.dcm", cine)
    write(FX / "colour.dcm", np.zeros((2, 32, 32, 3), np.uint8), "RGB", 3)
    data = (FX / "cine.dcm").read_bytes()
    (FX / "trunc.dcm").write_bytes(data[: len(data) // 2])
    (FX / "text.dcm").write_text("DICM? no")


def out(name: str) -> Path:
    return WORK / name


def clean(r: dict) -> bool:
    """Nothing a user must not see: no traceback, no NumPy repr, no raw control character."""
    text = r["out"]
    return (not r["traceback"] and "np.int" not in text and "np.float" not in text
            and not any(c in text for c in "\x1b\r\x07"))


def refused(*args, code=None, needle="", nothing: Path | None = None):
    r = run(*args)
    return one_error(r, code, needle) and clean(r) and (nothing is None or not nothing.exists()), r


def works(*args, needle: str = ""):
    r = run(*args)
    return r["code"] == 0 and clean(r) and needle in r["out"], r


def bad_value(command: list, option: str, values: tuple, code: int = 2, needle: str = "") -> None:
    """One case per value: a refusal with ``code`` naming the option."""
    for value in values:
        @case(f"{' '.join(command)} {option} {value!s}", f"exit {code}, one error line naming {option}")
        def _(value=value):
            return refused(*command, option, value, code=code, needle=needle or option)


# ---------------- infer: options ----------------
INFER = ["infer", "--model", str(TINY), "--image", str(PNG)]
bad_value(INFER, "--threshold", ("-0.1", "1.5", "nan", "inf", "abc"))
bad_value(INFER, "--threads", ("0", "-3", "100000", "x"))
bad_value(["infer", "--model", str(TINY), "--camera", "0", "--no-display"], "--crop", ("diagonal", ""))
bad_value(["infer", "--model", str(TINY), "--video", str(FX / "clip.avi"), "--no-display"], "--every", ("0", "-1"))
bad_value(["infer", "--model", str(TINY), "--video", str(FX / "clip.avi"), "--no-display"], "--frames", ("0", "-2", "x"))
bad_value(["infer", "--model", str(MAP), "--video", str(FX / "clip.avi"), "--no-display"], "--persist",
          ("3/2", "0/3", "a/b", "2", "2/1000000", "-1/3"))
bad_value(["infer", "--model", str(TINY), "--image", str(FX / "cine.dcm")], "--frames", ("0", "5-2", "1,,2", "x", "99"),
          code=None, needle="--frames")


@case("infer: --image and --camera together", "one error line, exit 2")
def _():
    return refused("infer", "--model", TINY, "--image", PNG, "--camera", "0", code=2)


@case("infer: neither --image nor --camera nor --video", "one error line, exit 2")
def _():
    return refused("infer", "--model", TINY, code=2)


@case("infer --persist with a patch classifier", "one error line: persistence is for whole-frame models")
def _():
    return refused("infer", "--model", TINY, "--video", FX / "clip.avi", "--no-display", "--persist", "2/3")


@case("infer --persist with --image (files, not a stream)", "one error line")
def _():
    return refused("infer", "--model", MAP, "--image", FRAME, "--persist", "2/3")


@case("infer --labels on a model with metadata, different labels", "one error line")
def _():
    return refused("infer", "--model", TINY, "--image", PNG, "--labels", "a,b")


@case("infer --labels a,a on a model without metadata", "one error line")
def _():
    return refused("infer", "--model", FX / "nometa.tflite", "--image", PNG, "--labels", "a,a")


@case("infer --labels ',' (empty names)", "one error line")
def _():
    return refused("infer", "--model", FX / "nometa.tflite", "--image", PNG, "--labels", ",")


@case("infer --labels with a newline in a name", "one error line, or the name escaped")
def _():
    r = run("infer", "--model", FX / "nometa.tflite", "--image", PNG, "--labels", "a\nerror: x,b")
    return clean(r) and not any(line.startswith("error: x") for line in r["out"].splitlines()), r


@case("infer --model nometa without --labels", "one error line naming --labels")
def _():
    return refused("infer", "--model", FX / "nometa.tflite", "--image", PNG, needle="--labels")


# ---------------- infer: models ----------------
for name in ("half.tflite", "empty.tflite", "note.txt", "absent.tflite"):
    @case(f"infer --model {name}", "one error line")
    def _(name=name):
        return refused("infer", "--model", FX / name, "--image", PNG)


@case("infer --model a folder", "one error line")
def _():
    return refused("infer", "--model", FX, "--image", PNG)


@case("infer --model a dangling symlink", "one error line")
def _():
    return refused("infer", "--model", FX / "dangling.png", "--image", PNG)


@case("infer --model /dev/null", "one error line")
def _():
    return refused("infer", "--model", "/dev/null", "--image", PNG)


@case("infer --image on a whole-frame model", "one error line pointing to scan")
def _():
    return refused("infer", "--model", MAP, "--image", FRAME, needle="scan")


# ---------------- infer: images ----------------
for name, needle in (("text.png", "text.png"), ("zero.png", "zero.png"), ("cut.png", "cut.png"),
                     ("bomb.png", "64,000,000"), ("dangling.png", "dangling"), ("x.tif", "x.tif"),
                     ("absent.png", "absent"), ("text.dcm", "text.dcm"), ("trunc.dcm", "trunc.dcm"),
                     ("colour.dcm", "colour.dcm")):
    @case(f"infer --image {name}", "one error line naming the file, exit non-zero")
    def _(name=name, needle=needle):
        return refused("infer", "--model", TINY, "--image", FX / name, needle=needle)


for name in ("one.png", "thin.png", "rgba.png", "palette.png", "grey16.png", "cmyk.jpg", "gif.gif", "cine.dcm"):
    @case(f"infer --image {name} (odd but readable)", "a result, exit 0")
    def _(name=name):
        return works("infer", "--model", TINY, "--image", FX / name, "--json")


@case("infer --image a folder of odd file names (newline, ESC, unicode, leading dash, 250 chars)",
      "one result each, names escaped")
def _():
    r = run("infer", "--model", TINY, "--image", FX / "odd", "--json")
    return r["code"] == 0 and clean(r) and len(json.loads(r["stdout"])["results"]) == 6, r


@case("infer --image an empty folder", "one error line")
def _():
    return refused("infer", "--model", TINY, "--image", FX / "empty-dir")


@case("infer --image a folder of text files only", "one error line")
def _():
    return refused("infer", "--model", TINY, "--image", FX / "only-text")


@case("infer --image a folder with a symlink loop", "terminates: each image once")
def _():
    r = run("infer", "--model", TINY, "--image", FX / "loop", "--json")
    rows = [line for line in r["stdout"].splitlines() if line.startswith("{")]
    return clean(r) and len(rows) == 1, r


@case("infer --image the same file twice", "two results or one, never a crash")
def _():
    r = run("infer", "--model", TINY, "--image", PNG, "--image", PNG, "--json")
    return r["code"] == 0 and clean(r), r


@case("infer --csv under a regular file", "one error line, nothing written")
def _():
    return refused("infer", "--model", TINY, "--image", PNG, "--csv", FX / "note.txt" / "x.csv", needle="not a directory")


@case("infer --csv onto an existing file", "refused or replaced whole, never appended half")
def _():
    target = out("csv-existing.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("keep\n")
    r = run("infer", "--model", TINY, "--image", PNG, "--csv", target)
    return clean(r) and (target.read_text() == "keep\n" if r["code"] else target.read_text().startswith("file")), r


@case("infer --csv a folder", "one error line")
def _():
    return refused("infer", "--model", TINY, "--image", PNG, "--csv", FX / "empty-dir")


@case("infer --csv with a bad image among good ones", "the CSV has a row for each, exit 1")
def _():
    target = out("mixed.csv")
    r = run("infer", "--model", TINY, "--image", PNG, "--image", FX / "text.png", "--csv", target)
    return r["code"] == 1 and clean(r) and target.is_file() and len(target.read_text().splitlines()) == 3, r


@case("infer --image DICOM --frames 2 --json", "one row, frame 2")
def _():
    r = run("infer", "--model", TINY, "--image", FX / "cine.dcm", "--frames", "2", "--json")
    rows = json.loads(r["stdout"])["results"]
    return r["code"] == 0 and clean(r) and [row["frame"] for row in rows] == [2] and "Probe" not in r["out"], r


@case("infer --image DICOM --show-header", "the header shown, the patient's name masked")
def _():
    r = run("infer", "--model", TINY, "--image", FX / "cine.dcm", "--show-header")
    return r["code"] == 0 and clean(r) and "Probe^Patient" not in r["out"], r


# ---------------- infer: video / camera ----------------
for name in ("fake.mp4", "zero.avi", "absent.avi", "empty-dir", "text.dcm"):
    @case(f"infer --video {name}", "one error line")
    def _(name=name):
        return refused("infer", "--model", TINY, "--video", FX / name, "--no-display")


@case("infer --video clip.avi --frames 3 --json", "3 lines, fps present")
def _():
    r = run("infer", "--model", TINY, "--video", FX / "clip.avi", "--no-display", "--frames", "3", "--json")
    rows = [json.loads(line) for line in r["stdout"].splitlines() if line.startswith("{")]
    return r["code"] == 0 and clean(r) and len(rows) == 3 and all("fps" in row for row in rows), r


@case("infer --video with a whole-frame model --persist 2/3 --json", "lesion lines, exit 0")
def _():
    r = run("infer", "--model", MAP, "--video", FX / "clip.avi", "--no-display", "--persist", "2/3", "--json")
    return r["code"] == 0 and clean(r) and '"lesions"' in r["stdout"], r


@case("infer --video a DICOM cine (its own clock)", "one line per frame, exit 0")
def _():
    r = run("infer", "--model", TINY, "--video", FX / "cine.dcm", "--no-display", "--json")
    rows = [line for line in r["stdout"].splitlines() if line.startswith("{")]
    return r["code"] == 0 and clean(r) and len(rows) == 4, r


for value in ("-1", "100", "pi0", "", "0x1"):
    @case(f"infer --camera {value!r}", "exit 2, one error line naming --camera")
    def _(value=value):
        return refused("infer", "--model", TINY, "--camera", value, "--no-display", code=2, needle="--camera")


# ---------------- scan ----------------
SCAN = ["scan", "--model", str(MAP), str(FRAME)]
bad_value(SCAN, "--threshold", ("-1", "2", "nan"))
bad_value(SCAN, "--persist", ("1/0", "x", "5/3"))
bad_value(SCAN, "--max-frames", ("0", "-5"))
bad_value(SCAN, "--threads", ("0", "-1"))
bad_value(["scan", "--model", str(MAP), str(FX / "cine.dcm")], "--frames", ("0", "3-1", "abc"), code=None)

for name in ("text.png", "zero.png", "cut.png", "bomb.png", "dangling.png", "absent.png", "fake.mp4", "zero.avi",
             "trunc.dcm", "text.dcm", "colour.dcm", "x.tif", "empty-dir", "only-text"):
    @case(f"scan {name}", "one error line naming it, exit non-zero, nothing under --out")
    def _(name=name):
        target = out(f"scan-{name}")
        return refused("scan", "--model", MAP, FX / name, "--out", target, nothing=target)


for name in ("frame.png", "cine.dcm", "clip.avi", "loop", "odd", "one.png", "thin.png", "grey16.png"):
    @case(f"scan {name} --json", "a document, exit 0")
    def _(name=name):
        r = run("scan", "--model", MAP, FX / name, "--json")
        ok = r["code"] == 0 and clean(r)
        if ok:
            json.loads(r["stdout"])
        return ok, r


@case("scan with a patch classifier", "one error line pointing to infer")
def _():
    return refused("scan", "--model", TINY, FRAME, needle="infer")


@case("scan --model a text file", "one error line")
def _():
    return refused("scan", "--model", FX / "note.txt", FRAME)


@case("scan --model half a whole-frame model", "one error line")
def _():
    half = out("half-map.tflite")
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(MAP.read_bytes()[:600])
    return refused("scan", "--model", half, FRAME)


@case("scan a good frame and a bad one --json", "both rows in the document, the bad one's error in it, exit 1")
def _():
    r = run("scan", "--model", MAP, FRAME, FX / "text.png", "--json")
    rows = json.loads(r["stdout"])["results"] if r["code"] == 1 else []
    return clean(r) and len(rows) == 2 and bool(rows[1]["error"]) and rows[0]["lesions"] is not None, r


@case("scan --out under a regular file", "one error line before any work")
def _():
    return refused("scan", "--model", MAP, FRAME, "--out", FX / "note.txt" / "o", needle="not a directory")


@case("scan --out an existing folder holding other files", "written beside them, none replaced (as --help says)")
def _():
    target = out("scan-busy")
    target.mkdir(parents=True, exist_ok=True)
    (target / "keep.txt").write_text("keep")
    r = run("scan", "--model", MAP, FRAME, "--out", target)
    return r["code"] == 0 and clean(r) and (target / "keep.txt").read_text() == "keep", r


@case("scan --out writes overlays", "exit 0, overlay files")
def _():
    target = out("scan-overlays")
    r = run("scan", "--model", MAP, FRAME, FX / "cine.dcm", "--out", target)
    return r["code"] == 0 and clean(r) and target.is_dir() and any(target.iterdir()), r


@case("scan --persist 2/3 over single images", "refused or applies to sequences only, said")
def _():
    r = run("scan", "--model", MAP, FRAME, PNG, "--persist", "2/3", "--json")
    return clean(r) and (r["code"] == 0 or one_error(r)), r


@case("scan (no paths)", "exit 2, usage")
def _():
    r = run("scan", "--model", MAP)
    return r["code"] == 2 and clean(r), r


# ---------------- benchmark ----------------
BENCH = ["benchmark", "--model", str(TINY)]
bad_value(BENCH, "--runs", ("0", "-1", "x", "100000000"), needle="--runs")
bad_value(BENCH, "--warmup", ("-1",), needle="--warmup")
bad_value(BENCH, "--threads", ("0", "-2"))


@case("benchmark --frame with a patch classifier", "one error line")
def _():
    return refused("benchmark", "--model", TINY, "--frame", FRAME)


@case("benchmark --frame a text file", "one error line")
def _():
    return refused("benchmark", "--model", MAP, "--frame", FX / "text.png")


@case("benchmark --frame the bomb", "one error line naming the limit")
def _():
    return refused("benchmark", "--model", MAP, "--frame", FX / "bomb.png", needle="64,000,000")


@case("benchmark the whole-frame model with --frame", "timings, exit 0")
def _():
    return works("benchmark", "--model", MAP, "--frame", FRAME, "--runs", "2", "--warmup", "0")


@case("benchmark --model nometa without --labels", "timings (labels not needed) or one error line")
def _():
    r = run("benchmark", "--model", FX / "nometa.tflite", "--runs", "2")
    return clean(r) and (r["code"] == 0 or one_error(r)), r


@case("benchmark --model twice the same file", "refused or timed once each")
def _():
    r = run("benchmark", "--model", TINY, "--model", TINY, "--runs", "2")
    return clean(r) and (r["code"] == 0 or one_error(r)), r


@case("benchmark --json", "one JSON document")
def _():
    r = run("benchmark", "--model", TINY, "--runs", "2", "--json")
    json.loads(r["stdout"])
    return r["code"] == 0 and clean(r), r


# ---------------- inspect ----------------
for name in ("half.tflite", "empty.tflite", "note.txt", "absent.tflite", "dangling.png"):
    @case(f"inspect {name}", "one error line")
    def _(name=name):
        return refused("inspect", FX / name)


@case("inspect a whole-frame model", "says map, exit 0")
def _():
    return works("inspect", MAP)


@case("inspect nometa.tflite", "described, or one error line naming only options that exist")
def _():
    r = run("inspect", FX / "nometa.tflite")
    return clean(r) and (r["code"] == 0 or (one_error(r) and "infer and benchmark take them as --labels" in r["errors"][0])), r


@case("inspect --json: every number a plain JSON number", "parses, no NumPy repr")
def _():
    r = run("inspect", TINY, "--json")
    json.loads(r["stdout"])
    return r["code"] == 0 and clean(r), r


@case("inspect --count 0", "exit 2")
def _():
    return refused("inspect", TINY, "--count", "0", code=2)


@case("inspect --out without --report", "exit 2")
def _():
    return refused("inspect", TINY, "--out", out("x"), code=2)


@case("inspect (packaged reference): names its card", "exit 0, the card named")
def _():
    return works("inspect", needle="MODEL_CARD.md")


# ---------------- serve (refusals only: a success would block) ----------------
SERVE = ["serve", "--model", str(TINY)]
bad_value(SERVE, "--port", ("-1", "65536", "x"), needle="--port")
bad_value(SERVE, "--threads", ("0",))
bad_value(SERVE, "--max-upload-mb", ("0", "-1", "inf", "5000"), needle="--max-upload-mb")
bad_value(SERVE + ["--camera", "0"], "--crop", ("sideways",))
bad_value(SERVE, "--camera", ("-1", "abc"), needle="--camera")


@case("serve --camera and --video together", "exit 2")
def _():
    return refused(*SERVE, "--camera", "0", "--video", FX / "clip.avi", code=2)


@case("serve --video a missing file", "one error line before anything listens")
def _():
    return refused(*SERVE, "--video", FX / "absent.avi", "--port", "0")


@case("serve --video a folder", "one error line")
def _():
    return refused(*SERVE, "--video", FX / "empty-dir", "--port", "0")


@case("serve --token-file an empty file", "one error line")
def _():
    empty = out("empty-token")
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_text("")
    os.chmod(empty, 0o600)
    return refused(*SERVE, "--token-file", empty, "--port", "0", needle="--token-file")


@case("serve --token-file a short token", "one error line")
def _():
    short = out("short-token")
    short.parent.mkdir(parents=True, exist_ok=True)
    short.write_text("abc")
    os.chmod(short, 0o600)
    return refused(*SERVE, "--token-file", short, "--port", "0", needle="--token-file")


@case("serve --token-file a folder", "one error line")
def _():
    return refused(*SERVE, "--token-file", FX / "empty-dir", "--port", "0", needle="--token-file")


@case("serve --model half a model", "one error line")
def _():
    return refused("serve", "--model", FX / "half.tflite", "--port", "0")


@case("serve --model nometa.tflite", "one error line naming a real option")
def _():
    return refused("serve", "--model", FX / "nometa.tflite", "--port", "0")


@case("serve --host ''", "one error line")
def _():
    return refused(*SERVE, "--host", "", "--port", "0")


# ---------------- synth ----------------
bad_value(["synth", "--out", str(WORK / "synth-bad")], "--count", ("0", "x"), needle="--count")
bad_value(["synth", "--out", str(WORK / "synth-bad"), "--frames"], "--size", ("8", "100000"), needle="--size")
bad_value(["synth", "--out", str(WORK / "synth-bad"), "--frames"], "--count", ("0", "-1"), needle="--count")
bad_value(["synth", "--out", str(WORK / "synth-bad"), "--frames"], "--seed", ("-1",), needle="--seed")


@case("synth --frames --out under a regular file", "one error line, nothing written")
def _():
    return refused("synth", "--frames", "--out", FX / "note.txt" / "d", "--count", "2")


@case("synth --frames --out a non-empty folder", "refused, nothing overwritten")
def _():
    return refused("synth", "--frames", "--out", FX / "odd", "--count", "2")


@case("synth --frames --count 2 --size 64", "frames and a COCO file, exit 0")
def _():
    target = out("synth-frames")
    r = run("synth", "--frames", "--out", target, "--count", "2", "--size", "64")
    return r["code"] == 0 and clean(r) and any(target.rglob("*.json")), r


@case("synth --out a name with a newline", "written, or one error line; the name escaped")
def _():
    r = run("synth", "--out", out("new\nerror: x"), "--count", "1", "--size", "16")
    return clean(r) and not any(line.startswith("error: x") for line in r["out"].splitlines()), r


# ---------------- the top level ----------------
@case("an unknown command", "exit 2, usage")
def _():
    r = run("frobnicate")
    return r["code"] == 2 and clean(r), r


@case("--version", "exit 0")
def _():
    return works("--version")


def main() -> None:
    results = json.loads(OUT.read_text()) if OUT.is_file() else []
    done = {r["case"] for r in results}
    fixtures()
    WORK.mkdir(parents=True, exist_ok=True)
    run_cases(choose(ONLY), done, results, OUT, LIMIT, width=240)


main()
