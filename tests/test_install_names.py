"""The wheel installs one import name, ``artery_edge`` (issue 38): beside another project's
``trainer`` it overwrites nothing and both import.

PyPI has a ``trainer``, an ``edge``, a ``converters`` and an ``evaluation``; the project's folders of
those names install as ``artery_edge.trainer`` and so on (``pyproject.toml``'s ``package-dir``).
TensorFlow-free: the wheel is built from this checkout and installed with ``--no-deps`` into a
fresh venv that borrows this environment's packages (numpy, Pillow, LiteRT) through a ``.pth`` file.
"""

from __future__ import annotations

import shutil
import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "artery_edge", "trainer", "edge", "converters", "evaluation")
STAND_INS = ("trainer", "edge", "converters", "evaluation")  # names of other projects on PyPI
STAND_IN = 'WHO = "a stand-in for another project\'s trainer"\n'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    for name in WHEEL_SOURCES:  # a copy: building in the checkout would leave build/ there
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                            "-w", str(out), str(source)], capture_output=True, text=True)
    if built.returncode:
        pytest.skip(f"the wheel could not be built here (pip wheel: {built.stderr.strip().splitlines()[-1:]})")
    return next(out.glob("artery_edge-*.whl"))


def test_the_wheel_has_one_top_level_name(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"artery_edge"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "artery_edge/edge/reference/model_int8.tflite" in names and "artery_edge/trainer/config.py" in names


def stand_in_venv(wheel: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh venv holding stand-ins named ``trainer``, ``edge``, ``converters`` and ``evaluation``,
    then the wheel; its site-packages folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (packages / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # numpy, Pillow, LiteRT
    for name in STAND_INS:
        (packages / name).mkdir()
        (packages / name / "__init__.py").write_text(STAND_IN)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "--ignore-installed", "-q", "--disable-pip-version-check", str(wheel)], check=True)
    return venv, packages


def test_installed_beside_a_package_named_trainer_both_import(wheel: Path, tmp_path: Path) -> None:
    venv, packages = stand_in_venv(wheel, tmp_path)
    check = ("import trainer, artery_edge.trainer.config as c, artery_edge.edge.classifier as e; "
             "print(trainer.WHO); print(c.__file__); print(e.__file__)")
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    who, config_file, classifier_file = shown.stdout.splitlines()
    assert who == "a stand-in for another project's trainer"
    assert all((packages / name / "__init__.py").read_text() == STAND_IN for name in STAND_INS)
    assert Path(config_file).is_relative_to(packages / "artery_edge" / "trainer")
    assert Path(classifier_file).is_relative_to(packages / "artery_edge" / "edge")


def test_the_installed_commands_use_their_own_packaged_models_beside_the_stand_ins(wheel: Path, tmp_path: Path) -> None:
    """Every lookup by name (package data, the packaged models' paths) must go through ``artery_edge``:
    a bare ``edge`` here is another project's, and in a checkout it would pass unnoticed."""
    venv, packages = stand_in_venv(wheel, tmp_path)
    image = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(image)
    for command in (["infer", "--image", str(image), "--json"], ["scan", str(image), "--json"]):
        shown = subprocess.run([str(venv / "bin" / "artery-edge"), *command], capture_output=True, text=True, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert Path(json.loads(shown.stdout)["model"]).is_relative_to(packages / "artery_edge" / "edge" / "reference")
