"""Issue 22's third round of probes: train --teacher / --teacher-weight, adapt / --init-from /
--replay, serve, synth, benchmark, infer --camera and inspect, in one process (TensorFlow
imported once), each case a command as a user types it. tests/probes.md holds the table.

usage: python tests/probes/probe_commands.py FIXTURES OUT.json ["prefix|prefix"]
Run from the source tree under test (cwd first on sys.path). FIXTURES is made on first use
(a 32 px synthetic dataset, one tiny run trained on it, copies of it damaged in chosen ways)
and reused after. Cases already in OUT.json are kept and not run again (a run cut short
resumes). PROBE_CASE_LIMIT=SECONDS (default 240) stops a case that runs longer: a tree that
starts a training an option check should have refused. PROBE_SKIP="prefix|prefix" leaves cases out.
"""
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from typer.testing import CliRunner  # noqa: E402

from artery_edge.cli import app  # noqa: E402
from probe_harness import case, choose, invoker, one_error, run_cases  # noqa: E402 - beside this script

FX = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
ONLY = tuple(sys.argv[3].split("|")) if len(sys.argv) > 3 else ()
LIMIT = int(os.environ.get("PROBE_CASE_LIMIT", "240"))
TINY = ["--image-size", "32", "--alpha", "0.35", "--weights", "none", "--batch-size", "8", "--epochs", "1",
        "--fine-tune-epochs", "1", "--no-tensorboard"]
DATA, T1 = FX / "data", FX / "t1"
WORK = FX / f"work-{OUT.stem}"  # each output file its own: a tree's leftovers never judge another's
runner = CliRunner()
run = invoker(runner, app)


def make_fixtures() -> None:
    """The dataset and the teacher run t1, then its variants; each made once (TensorFlow)."""
    if not DATA.is_dir():
        assert runner.invoke(app, ["synth", "--out", str(DATA), "--count", "24", "--size", "32", "--seed", "5"]).exit_code == 0
    if not (T1 / "run.json").is_file():
        r = runner.invoke(app, ["train", str(DATA), *TINY, "--output-dir", str(FX), "--run-name", "t1", "--json"])
        assert r.exit_code == 0, r.output
    variants = {"t1copy": None, "tdamaged": "damaged", "tforeign": "foreign", "interrupted": "interrupted"}
    for name, how in variants.items():
        if (FX / name).is_dir():
            continue
        shutil.copytree(T1, FX / f"{name}.tmp")
        alter(FX / f"{name}.tmp", how)
        (FX / f"{name}.tmp").rename(FX / name)
    if not (FX / "t1link").is_symlink():
        (FX / "t1link").symlink_to(T1)
    for name, classes in {"other": ("Cats", "Dogs"), "onecls": ("Healthy",)}.items():
        if not (FX / name).is_dir():
            for new, old in zip(classes, ("Healthy", "Unhealthy")):
                shutil.copytree(DATA / old, FX / f"{name}.tmp" / new)
            (FX / f"{name}.tmp").rename(FX / name)


def edge_fixtures() -> None:
    """The .tflite and text files of the TF-free cases (serve, benchmark, infer, inspect)."""
    FX.mkdir(parents=True, exist_ok=True)
    if not (FX / "tiny.tflite").is_file():
        from artery_edge.edge.metadata import ModelMetadata
        from tests.tflite_builder import build_tiny_classifier

        build_tiny_classifier(FX / "tiny.tflite", size=32, metadata=ModelMetadata(
            labels=["Healthy", "Unhealthy"], input_size=32, precision="float32"))
        data = (FX / "tiny.tflite").read_bytes()
        (FX / "half.tflite").write_bytes(data[: len(data) // 2])
        (FX / "empty.tflite").write_bytes(b"")
        (FX / "note.txt").write_text("not a model\n")
        (FX / "token").write_text("x" * 32)


def alter(run: Path, how) -> None:
    """A copy of t1 damaged as ``how`` says (None: an exact copy, the same model.keras)."""
    if how == "damaged":
        data = (run / "model.keras").read_bytes()
        (run / "model.keras").write_bytes(data[: len(data) // 2])
    elif how == "foreign":  # run.json says 32 px, its model.keras takes 48
        from artery_edge.trainer import model as trainer_model
        from artery_edge.trainer.config import TrainConfig

        other = trainer_model.build_model(2, TrainConfig(data_dirs=["x"], image_size=48, alpha=0.35, weights="none"))
        (run / "model.keras").unlink()
        other.save(run / "model.keras")
    elif how == "interrupted":  # a distillation run cut short: no run.json, no metrics.json yet
        config = json.loads((run / "config.json").read_text())
        config["teachers"] = [str(T1)]
        (run / "config.json").write_text(json.dumps(config))
        (run / "run.json").unlink()
        (run / "metrics.json").unlink()


def out_dir(name: str) -> Path:
    return WORK / name


def nothing_in(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def toml(name: str, text: str) -> Path:
    path = WORK / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refused_train(name: str, *args, code=None, needle=""):
    """``train DATA TINY args`` into its own output folder: one error line and no run folder."""
    out = out_dir(name)
    r = run("train", DATA, *TINY, "--output-dir", out, *args)
    return one_error(r, code, needle) and nothing_in(out), r


# ---------------- train --teacher ----------------
@case("train --teacher: a folder that is no run (the dataset)", "one error line, no run folder")
def _():
    return refused_train("k1", "--teacher", DATA, needle="--teacher")


@case("train --teacher: a path that does not exist", "one error line, no run folder")
def _():
    return refused_train("k2", "--teacher", FX / "absent", needle="--teacher")


@case("train --teacher: a run whose model.keras is cut in half", "one error line, no run folder")
def _():
    return refused_train("k3", "--teacher", FX / "tdamaged", needle="cannot be loaded")


@case("train --teacher: the same run twice", "one error line, no run folder")
def _():
    return refused_train("k4", "--teacher", T1, "--teacher", T1, needle="twice")


@case("train --teacher: the same run, once with a trailing slash", "one error line, no run folder")
def _():
    return refused_train("k5", "--teacher", T1, "--teacher", f"{T1}/", needle="twice")


@case("train --teacher: the same run, once through a symlink", "one error line, no run folder")
def _():
    return refused_train("k6", "--teacher", T1, "--teacher", FX / "t1link", needle="twice")


@case("train --teacher: a copy of the run in another folder (the same model.keras)", "refused: one model counted twice")
def _():
    return refused_train("k7", "--teacher", T1, "--teacher", FX / "t1copy", needle="twice")


@case("train --teacher: the run's model.keras file instead of its folder", "one error line saying it is not a folder")
def _():
    return refused_train("k8", "--teacher", T1 / "model.keras", needle="not a")


@case("train --teacher: a run interrupted mid-training (no run.json)", "one error line, no run folder")
def _():
    return refused_train("k9", "--teacher", FX / "interrupted", needle="not a finished")


@case("train --teacher: a teacher of other classes than the data", "one error line, no run folder")
def _():
    out = out_dir("k10")
    r = run("train", FX / "other", *TINY, "--output-dir", out, "--teacher", T1)
    return one_error(r, None, "same classes") and nothing_in(out), r


@case("train --teacher: a run whose model.keras takes 48 px where its run.json says 32", "refused before the run exists")
def _():
    return refused_train("k11", "--teacher", FX / "tforeign", needle="does not belong")


for value in ("0", "-1", "nan", "1.5", "inf"):
    @case(f"train --teacher-weight {value}", "one error line, no run folder")
    def _(value=value):
        return refused_train(f"k12{value}", "--teacher", T1, "--teacher-weight", value, needle="teacher-weight")


@case("train --teacher-weight 0.3 without --teacher", "refused: the option would be ignored")
def _():
    return refused_train("k13", "--teacher-weight", "0.3", needle="teacher")


@case("train --teacher-weight 0.5 (the default, given) without --teacher", "refused: the option would be ignored")
def _():
    return refused_train("k14", "--teacher-weight", "0.5", needle="teacher")


@case("train --config: teachers = [a folder that is no run] (TOML list)", "the list is read: one error line naming it")
def _():
    return refused_train("k15", "--config", toml("k15", f'teachers = ["{DATA}"]\n'), needle=str(DATA))


@case("train --config: teachers = \"RUN\" (a bare string)", "one error line naming teachers, no run folder")
def _():
    return refused_train("k16", "--config", toml("k16", f'teachers = "{T1}"\n'), needle="teachers")


@case("train --config: teacher = [RUN] (the flag's spelling)", "one error line naming the option, with the right name")
def _():
    return refused_train("k17", "--config", toml("k17", f'teacher = ["{T1}"]\n'), needle="teachers")


@case("train --config: teacher_weight = 0.3 without teachers", "refused: the value would be ignored")
def _():
    return refused_train("k18", "--config", toml("k18", "teacher_weight = 0.3\n"), needle="teacher")


@case("train --resume of a distillation run with --teacher again", "refused, naming --teacher (the flag typed)")
def _():
    r = run("train", "--resume", FX / "interrupted", "--teacher", T1)
    return one_error(r, None, "leave out --teacher (a new run"), r


@case("train --resume of a distillation run with --teacher-weight", "refused, naming --teacher-weight")
def _():
    r = run("train", "--resume", FX / "interrupted", "--teacher-weight", "0.9")
    return one_error(r, None, "--teacher-weight"), r


@case("train --teacher: a 32 px teacher for a 48 px student", "trains; run.json records the teacher")
def _():
    out = out_dir("k21")
    r = run("train", DATA, *TINY[2:], "--image-size", "48", "--fine-tune-epochs", "0", "--output-dir", out,
            "--run-name", "s", "--teacher", T1, "--teacher-weight", "1")
    record = out / "s" / "run.json"
    ok = r["code"] == 0 and record.is_file() and \
        json.loads(record.read_text())["teachers"]["runs"][0]["model_sha256"] is not None
    return ok, r


# ---------------- adapt / --init-from / --replay ----------------
@case("adapt --from: a path that does not exist", "one error line naming --from, no run folder")
def _():
    out = out_dir("a1")
    r = run("adapt", DATA, "--from", FX / "absent", "--output-dir", out)
    return one_error(r, None, "--from") and nothing_in(out), r


@case("adapt --from: a run whose model.keras is cut in half", "one error line (no flag adapt lacks), no run folder")
def _():
    out = out_dir("a2")
    r = run("adapt", DATA, "--from", FX / "tdamaged", "--output-dir", out)
    return one_error(r, None, "cannot be loaded") and "--init-from" not in r["errors"][0] and nothing_in(out), r


@case("adapt --from: a run whose model.keras takes another size than its run.json", "refused, no run folder")
def _():
    out = out_dir("a3")
    r = run("adapt", DATA, "--from", FX / "tforeign", "--output-dir", out)
    return one_error(r, None, "does not belong") and "--init-from" not in r["errors"][0] and nothing_in(out), r


@case("adapt: a site with one class", "one error line, no run folder")
def _():
    out = out_dir("a4")
    r = run("adapt", FX / "onecls", "--from", T1, "--output-dir", out)
    return one_error(r, None, "one class") and nothing_in(out), r


@case("adapt: a site with other classes", "one error line, no run folder")
def _():
    out = out_dir("a5")
    r = run("adapt", FX / "other", "--from", T1, "--output-dir", out)
    return one_error(r, None, "same classes") and nothing_in(out), r


@case("adapt --replay -1", "one error line, no run folder")
def _():
    out = out_dir("a6")
    r = run("adapt", DATA, "--from", T1, "--replay", "-1", "--output-dir", out)
    return one_error(r, None, "replay") and nothing_in(out), r


@case("adapt --replay 100000 (the parent has ~17 training images per class)", "refused before the run exists: no silent cap")
def _():
    out = out_dir("a7")
    r = run("adapt", DATA, "--from", T1, "--replay", "100000", "--output-dir", out)
    return one_error(r, None, "replay") and nothing_in(out), r


for value in ("16", "5000", "-1"):
    @case(f"adapt --image-size {value}", "one error line, no run folder")
    def _(value=value):
        out = out_dir(f"a8{value}")
        r = run("adapt", DATA, "--from", T1, "--image-size", value, "--output-dir", out)
        return one_error(r, None, "image") and nothing_in(out), r


@case("train --init-from: a run whose model.keras takes another size than its run.json", "refused, no run folder")
def _():
    return refused_train("a9", "--init-from", FX / "tforeign", needle="does not belong")


@case("train --replay 3 without --init-from", "one error line, no run folder")
def _():
    return refused_train("a10", "--replay", "3", needle="init-from")


@case("train --init-from: the dataset folder (no run)", "one error line naming --init-from, no run folder")
def _():
    return refused_train("a11", "--init-from", DATA, needle="--init-from")


# ---------------- serve (only cases that must fail: a success would serve forever) ----------------
@case("serve --port -1", "exit 2")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--port", "-1")
    return one_error(r, 2, "--port"), r


@case("serve --port 70000", "exit 2")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--port", "70000")
    return one_error(r, 2, "--port"), r


@case("serve --port taken by another process", "one error line naming the address")
def _():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("serve", "--model", FX / "tiny.tflite", "--port", port)
    return one_error(r, None, str(port)), r


@case("serve --host 0.0.0.0 without --token-file", "exit 2, nothing listens")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--host", "0.0.0.0", "--port", "0")
    return one_error(r, 2, "--token-file"), r


@case("serve --host no-such-host.invalid with a token", "one error line naming the host")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--host", "no-such-host.invalid", "--token-file", FX / "token",
            "--port", "0")
    return one_error(r, None, "no-such-host.invalid"), r


@case("serve --token-file a missing file", "one error line")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--host", "0.0.0.0", "--token-file", FX / "absent", "--port", "0")
    return one_error(r, None, "--token-file"), r


@case("serve --model a missing file", "one error line before anything listens")
def _():
    r = run("serve", "--model", FX / "absent.tflite", "--port", "0")
    return one_error(r, None, "absent.tflite"), r


@case("serve --model a text file", "one error line")
def _():
    r = run("serve", "--model", FX / "note.txt", "--port", "0")
    return one_error(r, None, "note.txt"), r


@case("serve --camera -1", "exit 2")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--camera", "-1", "--port", "0")
    return one_error(r, 2, "--camera"), r


@case("serve --max-upload-mb nan", "exit 2")
def _():
    r = run("serve", "--model", FX / "tiny.tflite", "--max-upload-mb", "nan", "--port", "0")
    return one_error(r, 2, "--max-upload-mb"), r


# ---------------- synth ----------------
for value in ("0", "-5"):
    @case(f"synth --count {value}", "exit 2 (an option out of range), nothing written")
    def _(value=value):
        out = out_dir(f"y{value}")
        r = run("synth", "--out", out, "--count", value, "--size", "32")
        return one_error(r, 2, "--count") and not out.exists(), r


@case("synth --size 8", "exit 2, nothing written")
def _():
    out = out_dir("y8")
    r = run("synth", "--out", out, "--count", "2", "--size", "8")
    return one_error(r, 2, "--size") and not out.exists(), r


@case("synth --size 100000 (the renderer holds size^2 x 160 distances)", "exit 2 before any work")
def _():
    out = out_dir("y100000")
    r = run("synth", "--out", out, "--count", "1", "--size", "100000")
    return one_error(r, 2, "--size") and not out.exists(), r


@case("synth --seed -1", "exit 2, nothing written")
def _():
    out = out_dir("ys")
    r = run("synth", "--out", out, "--count", "2", "--size", "32", "--seed", "-1")
    return one_error(r, 2, "--seed") and not out.exists(), r


@case("synth --out a regular file", "one error line, the file untouched")
def _():
    plain = out_dir("yplain")
    plain.parent.mkdir(parents=True, exist_ok=True)
    plain.write_text("mine")
    r = run("synth", "--out", plain, "--count", "2", "--size", "32")
    return one_error(r) and plain.read_text() == "mine", r


@case("synth interrupted mid-way (Ctrl-C after 2 s of --count 100000)", "no half-written dataset left under --out")
def _():
    out = out_dir("yint")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(2)
    try:
        r = run("synth", "--out", out, "--count", "100000", "--size", "32")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    left = sorted(p.name for p in out.parent.iterdir() if p.name.startswith("yint"))
    r = {**r, "out": r["out"] + f"\nleft: {left} {sum(1 for _ in out.rglob('*.png')) if out.exists() else 0} png"}
    return r["code"] != 0 and not out.exists() and left == [], r


# ---------------- benchmark / infer / inspect ----------------
@case("benchmark --warmup -1", "exit 2")
def _():
    r = run("benchmark", "--model", FX / "tiny.tflite", "--warmup", "-1")
    return one_error(r, 2), r


@case("benchmark --model a text file", "one error line")
def _():
    r = run("benchmark", "--model", FX / "note.txt", "--runs", "1", "--warmup", "0")
    return one_error(r, None, "note.txt"), r


@case("benchmark --model a .tflite cut in half", "one error line")
def _():
    r = run("benchmark", "--model", FX / "half.tflite", "--runs", "1", "--warmup", "0")
    return one_error(r, None, "half.tflite"), r


@case("benchmark --model a folder", "one error line")
def _():
    r = run("benchmark", "--model", FX, "--runs", "1", "--warmup", "0")
    return one_error(r), r


@case("infer --camera pi without picamera2", "one error line: how to install it")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--camera", "pi", "--no-display", "--frames", "1")
    return one_error(r, None, "picamera2"), r


@case("infer --camera -1", "exit 2")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--camera", "-1", "--no-display")
    return one_error(r, 2, "--camera"), r


@case("infer --camera 99999999999999999999 (no such camera)", "one error line")
def _():
    r = run("infer", "--model", FX / "tiny.tflite", "--camera", "99999999999999999999", "--no-display", "--frames", "1")
    return one_error(r), r


@case("inspect (no argument): the packaged reference model", "exit 0, says on stderr which model")
def _():
    r = run("inspect")
    return r["code"] == 0 and "packaged reference model" in r["out"] and "labels" in r["out"].lower(), r


@case("inspect: a text file", "one error line")
def _():
    r = run("inspect", FX / "note.txt")
    return one_error(r, None, "note.txt"), r


@case("inspect: an empty .tflite", "one error line")
def _():
    r = run("inspect", FX / "empty.tflite")
    return one_error(r, None, "empty.tflite"), r


@case("inspect: a .tflite cut in half", "one error line")
def _():
    r = run("inspect", FX / "half.tflite")
    return one_error(r, None, "half.tflite"), r


@case("inspect: a folder", "one error line")
def _():
    r = run("inspect", FX)
    return one_error(r), r


def main() -> None:
    results = json.loads(OUT.read_text()) if OUT.is_file() else []
    done = {r["case"] for r in results}
    chosen = [c for c in choose(ONLY) if c[0] not in done]
    edge_fixtures()
    if any(c[0].startswith(("train", "adapt")) for c in chosen):  # the TF-free cases run without TensorFlow
        make_fixtures()
    run_cases(chosen, done, results, OUT, LIMIT, width=240)


main()
