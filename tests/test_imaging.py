"""edge.imaging: every image mode to RGB, and bad files refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge.errors import ImageError
from edge.imaging import MAX_IMAGE_PIXELS, load_image, open_image


def gray_ramp(size: int = 20) -> np.ndarray:
    return np.tile(np.linspace(0, 255, size).astype(np.uint8), (size, 1))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1", "RGB"])
def test_every_mode_becomes_rgb_with_the_same_gray(tmp_path, mode):
    gray = Image.fromarray(gray_ramp(), "L")
    image = gray.convert(mode)
    path = tmp_path / f"image.{'jpg' if mode == 'CMYK' else 'png'}"
    image.save(path) if mode != "CMYK" else image.save(path, quality=100)
    pixels = load_image(path, 20)
    assert pixels.shape == (20, 20, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels[..., 0], pixels[..., 2])  # gray stays gray
    if mode in ("L", "P", "RGBA", "LA", "RGB"):
        assert np.array_equal(pixels[..., 0], gray_ramp())


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp16 = (gray_ramp().astype(np.uint16) * 257)  # 0..65535
    path = tmp_path / "16bit.png"
    image = Image.fromarray(ramp16)
    assert image.mode.startswith("I;16")
    image.save(path)
    pixels = load_image(path, 20)
    assert np.array_equal(pixels[..., 1], gray_ramp())


def test_palette_with_transparency_and_rgba_drop_alpha(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png", 10)[0, 0].tolist() == [200, 0, 0]


def test_resize_is_pillow_bilinear_and_arrays_match_files(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (37, 37, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "x.png")
    from_file = load_image(tmp_path / "x.png", 64)
    from_array = load_image(array, 64)
    expected = np.asarray(Image.fromarray(array).resize((64, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(from_file, expected) and np.array_equal(from_array, expected)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"not an image at all", "not a readable image")],
)
def test_bad_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        open_image(path)
    assert "\n" not in str(info.value)


def test_truncated_png_is_refused(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        open_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        open_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path)  # tiny file, huge canvas
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="pixel"):
        open_image(path)
