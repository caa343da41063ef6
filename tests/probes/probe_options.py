"""Issue 22, third round: the train / adapt probes at the level of the functions the commands
call (config merge and checks, run loading, teachers, replay), TensorFlow-free, so an old tree
can be observed in seconds on a busy machine where each `train` would take minutes. Each case
names the command it stands for; tests/probes/probe_commands.py runs the same as commands.

usage: python tests/probes/probe_options.py WORK OUT.json   (run from the source tree under test)
"""
import json
import math
import os
import shutil
import sys
import traceback
from pathlib import Path

sys.path.insert(0, os.getcwd())
from artery_edge.edge.errors import ArteryEdgeError  # noqa: E402
from artery_edge.trainer.config import TrainConfig, load_config_file, merge_config, refuse_options_on_resume  # noqa: E402
from probe_harness import CASES, case  # noqa: E402 - beside this script

WORK = Path(sys.argv[1])
OUT = Path(sys.argv[2])
CLASSES = ["Healthy", "Unhealthy"]


def refused(call, needle="", absent=None):
    """(ok, observed): ``call`` raises one project error whose line holds ``needle`` (and not ``absent``)."""
    try:
        result = call()
    except ArteryEdgeError as exc:
        text = str(exc)
        ok = "\n" not in text and needle.lower() in text.lower() and (absent is None or absent not in text)
        return ok, f"error: {text}"
    except Exception as exc:  # noqa: BLE001 - anything else is a traceback for the user
        return False, "traceback " + "".join(traceback.format_exception_only(exc)).strip()
    return False, f"accepted: {result!r}"[:200]


def fake_run(folder: Path, model: bytes = b"model") -> Path:
    """A finished run's files; its training split: 3 empty images per class."""
    from artery_edge.trainer.samples import Sample
    from artery_edge.trainer.split_files import write_split

    data, run = folder / "data", folder / "run"
    samples = []
    for label, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(3):
            (data / name / f"{i}.png").write_bytes(b"png")
            samples.append(Sample(data / name / f"{i}.png", label, "train"))
    run.mkdir()
    (run / "model.keras").write_bytes(model)
    (run / "run.json").write_text(json.dumps({"class_names": CLASSES, "image_size": 32}))
    (run / "config.json").write_text(json.dumps(TrainConfig(data_dirs=[str(data)]).to_dict()))
    write_split(run / "split.csv", samples, data, CLASSES)
    return run


def toml(name: str, text: str) -> Path:
    path = WORK / f"{name}.toml"
    path.write_text(text)
    return path


def train_config(given: dict, config_file=None):
    """What `train DATA [given] [--config FILE]` checks before any work."""
    return merge_config({"data_dirs": ["d"], **given}, config_file).validate()


for value in (0.0, -1.0, math.nan, 1.5, math.inf):
    @case(f"train --teacher RUN --teacher-weight {value:g} (config check)", "one error line")
    def _(value=value):
        return refused(lambda: train_config({"teachers": ["t"], "teacher_weight": value}), "teacher-weight")


for value in (0.3, 0.5):
    @case(f"train --teacher-weight {value:g} without --teacher (config check)", "refused: it would be ignored")
    def _(value=value):
        return refused(lambda: train_config({"teacher_weight": value}), "--teacher")


@case("train --config: teacher_weight = 0.3 without teachers (config check)", "refused: it would be ignored")
def _():
    return refused(lambda: train_config({}, toml("w", "teacher_weight = 0.3\n")), "--teacher")


@case("train --config: teachers = \"RUN\", a bare string (config check)", "one error line naming teachers")
def _():
    return refused(lambda: train_config({}, toml("s", 'teachers = "runs/a"\n')), "teachers")


@case("train --config: teacher = [RUN], the flag's spelling (config check)", "one error line giving the key's name")
def _():
    return refused(lambda: load_config_file(toml("k", 'teacher = ["runs/a"]\n')), "the key is teachers")


@case("train --resume RUN --teacher RUN (the refusal's words)", "refused, naming --teacher (the flag typed)")
def _():
    return refused(lambda: refuse_options_on_resume(["teachers"], WORK / "run"), "leave out --teacher (", "--teachers")


def teachers(spelling: str):
    """load_teachers of a fake run and ``spelling`` of it, the model load skipped (no TensorFlow)."""
    from artery_edge.trainer.distillation import load_teachers
    from artery_edge.trainer.runs import TrainedRun

    TrainedRun.keras_model = lambda self: None
    folder = WORK / f"t-{spelling}"
    shutil.rmtree(folder, ignore_errors=True)
    run = fake_run(folder)
    other = {"slash": f"{run}/", "link": folder / "link", "copy": folder / "copy", "dotdot": run / ".." / "run"}[spelling]
    if spelling == "link":
        other.symlink_to(run)
    if spelling == "copy":
        shutil.copytree(run, other)
    return lambda: load_teachers([str(run), str(other)])


for spelling, how in (("slash", "with a trailing slash"), ("dotdot", "as RUN/../RUN"), ("link", "through a symlink"),
                      ("copy", "and a copy of it (the same model.keras)")):
    @case(f"train --teacher RUN --teacher RUN {how} (teacher check)", "refused: one model counted twice")
    def _(spelling=spelling):
        return refused(teachers(spelling), "twice")


@case("train --teacher RUN/model.keras (a file, not the run's folder)", "one error line saying it is a file")
def _():
    from artery_edge.trainer.runs import load_run

    run = fake_run(WORK / "file")
    return refused(lambda: load_run(run / "model.keras"), "but a file")


@case("adapt --replay 1000000 (the parent has 3 training images per class; replay check)",
      "refused before the run exists: no silent cap")
def _():
    from artery_edge.trainer.parent import Parent, replay_samples
    from artery_edge.trainer.runs import load_run

    run = fake_run(WORK / "replay")
    return refused(lambda: replay_samples(Parent(load_run(run), "sha", None), 10**6, 1), "--replay")


def adapt_config(**changes):
    from artery_edge.trainer.adaptation import adaptation_config

    size = changes.pop("image_size", 32)
    return adaptation_config(["site"], "parent", size, **changes).validate()


@case("adapt --replay -1 (config check)", "one error line")
def _():
    return refused(lambda: adapt_config(replay=-1), "replay")


for size in (16, 5000, -1):
    @case(f"adapt --image-size {size} (config check)", "one error line")
    def _(size=size):
        return refused(lambda: adapt_config(image_size=size), "image size")


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    results = []
    for name, expected, fn in CASES:
        ok, observed = fn()
        results.append({"case": name, "expected": expected, "ok": bool(ok), "observed": observed[:240], "tail": ""})
        print(("PASS " if ok else "FAIL ") + name + " :: " + observed[:240], flush=True)
    OUT.write_text(json.dumps(results, indent=1))


main()
