"""edge.imaging: every image mode to RGB, and bad files refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from artery_edge.edge.errors import ImageError
from artery_edge.edge.imaging import MAX_IMAGE_PIXELS, load_image, open_image, to_rgb


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


def png_header_only(path, width: int, height: int, bit_depth: int = 8, colour_type: int = 0) -> None:
    """A PNG whose header declares ``width`` x ``height`` and holds no pixel data: what a bomb's
    header says costs nothing to write, and a decoder that trusts it allocates everything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_a_900_megapixel_bomb_is_refused_at_the_documented_limit(tmp_path):
    """Pillow's own limit (178,956,970 pixels) stops it first; the message names ours."""
    path = tmp_path / "bomb.png"
    png_header_only(path, 30_000, 30_000)
    with pytest.raises(ImageError, match=r"900,000,000 pixels exceeds the 64,000,000-pixel limit"):
        open_image(path)


@pytest.mark.parametrize("side, bits, colour_type, refused", [
    (7_999, 16, 0, True),  # 64 MP of 16-bit grey: 6 bytes a pixel with the RGB copy (issue 36: 1.8 GB)
    (6_000, 8, 6, True),  # 36 MP of 8-bit RGBA: 8 bytes a pixel
    (7_999, 8, 2, False),  # 64 MP of 8-bit RGB: the budget's own size (header only: it fails as truncated)
])
def test_decode_budget_counts_bit_depth_and_bands_before_any_decode(tmp_path, side, bits, colour_type, refused):
    path = tmp_path / "big.png"
    png_header_only(path, side, side, bits, colour_type)
    with pytest.raises(ImageError, match="MB to decode, over the 256 MB limit" if refused else "corrupt or truncated"):
        open_image(path)


def test_a_real_124_kb_16_bit_png_of_7999_px_is_refused_without_decoding(tmp_path):
    path = tmp_path / "flat16.png"
    Image.new("I;16", (7_999, 7_999)).save(path)
    assert path.stat().st_size < 300_000
    with pytest.raises(ImageError, match=r"7999x7999 I;16 needs about 384 MB"):
        open_image(path)


@given(st.lists(st.integers(0, 65535), min_size=1, max_size=64), st.sampled_from(["I;16", "I"]))
@settings(max_examples=60, deadline=None)
def test_16_bit_grey_maps_as_the_float_formula_did(values, mode):
    """The lookup gives rint(v / 65535 * 255) (8-bit values in a 32-bit "I" image kept as they are)."""
    array = np.array(values, dtype=np.uint16 if mode == "I;16" else np.int32).reshape(1, -1)
    image = Image.fromarray(array.astype(np.uint16)) if mode == "I;16" else Image.fromarray(array, mode="I")
    top = 255.0 if mode == "I" and array.max() <= 255 else 65535.0
    expected = np.rint(array / top * 255).astype(np.uint8)
    got = np.asarray(to_rgb(image))
    assert image.mode == mode and np.array_equal(got[..., 0], expected) and np.array_equal(got[..., 2], expected)
