"""The wheel installs one import name, ``artery_edge`` (issue 38): beside another project's
``trainer`` it overwrites nothing and both import.

PyPI has a ``trainer``, an ``edge``, a ``converters`` and an ``evaluation``; the project's folders of
those names install as ``artery_edge.trainer`` and so on (``pyproject.toml``'s ``package-dir``).
TensorFlow-free: the wheel is built from this checkout and installed with ``--no-deps`` into a
fresh venv that borrows this environment's packages (numpy, Pillow, LiteRT) through a ``.pth`` file.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "artery_edge", "trainer", "edge", "converters", "evaluation")
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


def test_installed_beside_a_package_named_trainer_both_import(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (packages / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # numpy, Pillow, LiteRT
    (packages / "trainer").mkdir()
    (packages / "trainer" / "__init__.py").write_text(STAND_IN)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", "--disable-pip-version-check", str(wheel)], check=True)
    check = ("import trainer, artery_edge.trainer.config as c, artery_edge.edge.classifier as e; "
             "print(trainer.WHO); print(c.__file__); print(e.__file__)")
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    who, config_file, classifier_file = shown.stdout.splitlines()
    assert who == "a stand-in for another project's trainer"
    assert (packages / "trainer" / "__init__.py").read_text() == STAND_IN
    assert Path(config_file).is_relative_to(packages / "artery_edge" / "trainer")
    assert Path(classifier_file).is_relative_to(packages / "artery_edge" / "edge")
