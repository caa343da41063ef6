"""Images and folders that cannot be read: each is a per-file error or a reported skip, never a
crash or a silently smaller set. TF-free."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from artery_edge.cli import app
from artery_edge.edge.errors import ImageError
from artery_edge.edge.imaging import IMAGE_EXTENSIONS, open_image
from tests.bad_inputs import model, save_png  # noqa: F401 (model: a fixture)
from artery_edge.trainer.samples import DataError
from artery_edge.trainer.scan import scan_dataset

runner = CliRunner()


# a class whose images are all unreadable is an error, not a silently one-class run
def test_a_class_with_no_readable_image_is_an_error(tmp_path):
    save_png(tmp_path / "Healthy" / "a.png")
    (tmp_path / "Unhealthy").mkdir()
    (tmp_path / "Unhealthy" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError, match="Unhealthy .* no readable image"):
        scan_dataset(tmp_path)


# a file Pillow recognises by content as another format, and any decoder exception
def test_a_crafted_file_of_another_format_is_a_per_file_error(tmp_path):
    path = tmp_path / "crafted.png"
    Image.new("RGB", (4, 4)).save(path, "TIFF")  # real format: TIFF, which the project does not claim
    with pytest.raises(ImageError, match="not a readable image"):
        open_image(path)


def test_any_decoder_exception_is_a_per_file_error(tmp_path, monkeypatch):
    path = save_png(tmp_path / "x.png")

    def explode(self):
        raise NotImplementedError("unsupported sub-format")

    monkeypatch.setattr(Image.Image, "load", explode)
    with pytest.raises(ImageError, match="NotImplementedError"):
        open_image(path)


# nothing vanishes silently from a folder
def test_broken_symlinks_and_fifos_are_reported_per_file(model, tmp_path):
    folder = tmp_path / "images"
    save_png(folder / "ok.png")
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "pipe.png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(folder), "--json"])
    report = json.loads(result.stdout)
    errors = {Path(r["file"]).name: r["error"] for r in report["results"] if r["error"]}
    assert result.exit_code == 1 and set(errors) == {"dangling.png", "loop.png", "pipe.png"}
    assert "no such file" in errors["dangling.png"] and "not a regular file" in errors["pipe.png"]


def test_an_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    from artery_edge.edge import imaging as edge_imaging

    save_png(tmp_path / "Healthy" / "a.png")
    real_walk = os.walk

    def walk(root, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "Healthy" / "locked")))
        yield from real_walk(root, onerror=onerror, **kwargs)

    monkeypatch.setattr(edge_imaging.os, "walk", walk)
    problems: list[str] = []
    assert [p.name for p in edge_imaging.iter_image_files(tmp_path / "Healthy", problems)] == ["a.png"]
    assert problems == [f"{tmp_path / 'Healthy' / 'locked'}: folder skipped (permission denied)"]


def test_a_missing_image_among_good_ones_is_skipped_not_fatal(model, tmp_path):
    good = save_png(tmp_path / "ok.png")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "gone.png"),
                                 "--image", str(good), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and [r["label"] is not None for r in report["results"]] == [False, True]
    assert "no such file" in report["results"][0]["error"]
    failed, classified = report["results"]  # one schema: the error row has every p_* key, as null
    assert list(failed) == list(classified) and failed["p_Unhealthy"] is None and failed["file"] == str(tmp_path / "gone.png")


def test_a_permission_error_is_not_called_corrupt(tmp_path, monkeypatch):
    path = save_png(tmp_path / "x.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(ImageError, match="permission denied"):
        open_image(path)


def test_images_of_a_kind_not_read_are_named_not_skipped_silently(model, tmp_path):
    """A folder's .tif (and .webp...) files are each one error line of infer (exit 1), and a
    skipped-file warning of the training scan, never passed over without a word."""
    for name in ("Healthy", "Unhealthy"):
        save_png(tmp_path / "data" / name / "a.png")
        Image.open(tmp_path / "data" / name / "a.png").save(tmp_path / "data" / name / "b.tif")
    (tmp_path / "data" / "Healthy" / "notes.txt").write_text("not an image: not named")
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(tmp_path / "data"), "--json"])
    assert result.exit_code == 1 and len(json.loads(result.stdout)["results"]) == 2
    assert json.loads(result.stdout)["problems"] == [
        f"{tmp_path / 'data' / name / 'b.tif'}: .tif images are not read (only {', '.join(IMAGE_EXTENSIONS)}): skipped"
        for name in ("Healthy", "Unhealthy")]
    skipped = scan_dataset(tmp_path / "data").skipped
    assert len(skipped) == 2 and all("b.tif: .tif images are not read" in s for s in skipped)
