"""`artery-edge explain`: Grad-CAM that explains (heat on the narrowing), not only draws."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="TensorFlow not installed (train extra)")

from artery_edge.cli import app  # noqa: E402

runner = CliRunner()


def test_grad_cam_follows_the_activations_that_drive_the_logit():
    """Machinery check on a hand-made model: the logit is the mean of a bright-feature channel,
    so the heat must sit where the bright blob is, whatever training would have done."""
    import keras

    from artery_edge.trainer.explain import heat_maps

    inputs = keras.Input((16, 16, 3))
    activations = keras.layers.Conv2D(2, 1, use_bias=False, kernel_initializer="ones")(inputs)
    logits = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[1.0, -1.0], [1.0, -1.0]]),
                                bias_initializer="zeros")(keras.layers.GlobalAveragePooling2D()(activations))
    grad_model = keras.Model(inputs, [activations, logits])
    pixels = np.full((3, 16, 16, 3), 10, np.uint8)
    boxes = [(2, 2, 6, 6), (8, 3, 14, 9), (5, 10, 9, 15)]
    for image, (x0, y0, x1, y1) in zip(pixels, boxes):
        image[y0:y1, x0:x1] = 250
    heat, _ = heat_maps(grad_model, pixels, lambda logits: [0, 0, 0])
    for h, (x0, y0, x1, y1) in zip(heat, boxes):
        inside = np.zeros_like(h, bool)
        inside[y0:y1, x0:x1] = True
        assert h.max() == pytest.approx(1.0) and h[inside].mean() > 2 * h[~inside].mean()


def test_explain_cli_writes_overlays_and_a_grid(trained_run, synthetic_dir, tmp_path):
    import json

    images = sorted((synthetic_dir / "Unhealthy").glob("*.png"))[:3] + [synthetic_dir / "Healthy"]
    args = ["explain", "--run", str(trained_run.run_dir), "--out", str(tmp_path / "x"), "--json"]
    result = runner.invoke(app, args + [a for p in images for a in ("--image", str(p))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["images"]) == 3 + 100 and report["skipped"] == 0
    assert all(0 <= r["probability"] <= 1 for r in report["images"])
    assert (tmp_path / "x" / "gradcam_grid.png").stat().st_size > 0
    assert (tmp_path / "x" / f"{images[0].stem}_gradcam.png").is_file()


@pytest.mark.parametrize("surest_only", [False, True])
def test_explain_labels_as_infer_does_at_the_runs_stored_threshold(trained_run, synthetic_dir, tmp_path, surest_only):
    """Not the arg-max: at threshold 0 every image is Unhealthy; at one between the two likeliest
    Unhealthy images only the likeliest is: exactly as the run's predictor (the one decision
    rule) calls them, with the called class's probability."""
    import json
    import shutil

    from artery_edge.trainer.predict import KerasPredictor

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    images = sorted(synthetic_dir.rglob("*.png"))[::10]
    p_unhealthy = KerasPredictor.from_run(run).probabilities(images)[:, 1]
    threshold = float(np.mean(np.sort(p_unhealthy)[-2:])) if surest_only else 0.0
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "threshold": threshold}))
    result = runner.invoke(app, ["explain", "--run", str(run), "--out", str(tmp_path / "x"), "--json",
                                 *[a for p in images for a in ("--image", str(p))]])
    assert result.exit_code == 0, result.output
    shown = {r["file"]: (r["label"], r["probability"]) for r in json.loads(result.stdout)["images"]}
    expected = KerasPredictor.from_run(run).labels(images)
    assert [shown[str(p)][0] for p in images] == expected
    assert expected != ["Unhealthy" if p > 0.5 else "Healthy" for p in p_unhealthy]  # the threshold decided
    for path, p in zip(images, p_unhealthy):
        label, probability = shown[str(path)]
        assert probability == pytest.approx(p if label == "Unhealthy" else 1 - p, abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--image", "/no/such/image.png"], "/no/such/image.png: no such file"),
    (["--image", "IMAGE", "--layer", "classifier"], "no convolutional layer named 'classifier'"),
])
def test_explain_bad_input_is_one_line(trained_run, synthetic_dir, args, message):
    image = str(sorted((synthetic_dir / "Unhealthy").glob("*.png"))[0])
    result = runner.invoke(app, ["explain", "--run", str(trained_run.run_dir),
                                 *[image if a == "IMAGE" else a for a in args]])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and message in errors[0], result.output
