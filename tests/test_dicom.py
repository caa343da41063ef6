"""DICOM in (the dicom extra, TF-free): every transfer syntax the extra decodes, windowing as a viewer
shows a frame, a cine through `infer --video` equal to its frames as PNG, each bad input one error
line, and no patient data in any output of any command that reads images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("pydicom", reason="pydicom not installed (dicom extra)")

from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    MPEG4HP41, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit,
    RLELossless, XRayAngiographicImageStorage,
)

from artery_edge.cli import app  # noqa: E402
from artery_edge.edge import ModelMetadata  # noqa: E402
from artery_edge.edge import dicom as dicom_module  # noqa: E402
from artery_edge.edge.dicom import open_dicom, parse_frame_numbers  # noqa: E402
from artery_edge.edge.errors import ImageError, OptionError  # noqa: E402
from artery_edge.edge.imaging import load_image  # noqa: E402
from tests.bad_inputs import LABELS, cli, one_error_line  # noqa: E402
from tests.tflite_builder import build_tiny_classifier, build_tiny_map_model  # noqa: E402

# pytest resets warning filters per test: the reader's own (pydicom's warnings quote header values,
# never shown) is restored here; the PHI test runs the commands in fresh processes, with the reader's.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")
runner = CliRunner()
DATA = Path(__file__).parent / "data"
MARK = "ZQXPHI"  # in every identifying attribute of the PHI test's files; never in any output
UID = "1.2.826.0.1.3680043.8.498.1039"


@pytest.fixture
def model(tmp_path) -> Path:
    return build_tiny_classifier(tmp_path / "tiny.tflite", "uint8",
                                 metadata=ModelMetadata(labels=LABELS, input_size=8, precision="int8"))


def write_dicom(path: Path, pixels: np.ndarray, syntax=ExplicitVRLittleEndian, photometric: str = "MONOCHROME2",
                bits_stored: int | None = None, sop_class=XRayAngiographicImageStorage, uid: str = UID,
                **attributes) -> Path:
    """A DICOM file pydicom writes: ``pixels`` (frames, rows, columns) or (rows, columns), uint8 or
    uint16, in ``syntax`` (RLE and JPEG 2000 encoded by pydicom and the extra's plugins)."""
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid
    ds.Modality = "XA"
    ds.Rows, ds.Columns = frames.shape[1:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = frames.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = frames.tobytes()
    if syntax in (RLELossless, JPEG2000Lossless):
        ds.compress(syntax, pixels, generate_instance_uid=False)
    elif syntax != ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    return path


def grey(path: Path, numbers=None) -> np.ndarray:
    return np.stack([g for _, g in open_dicom(path).read(numbers)])


def cine_pixels(frames: int = 8, size: int = 64) -> np.ndarray:
    """A dark vessel on a brighter, noisy background, narrowing and brightening frame by frame."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for i in range(frames):
        frame = 150 + 12 * i + rng.normal(0, 12, (size, size))
        width = 10 - i + 3 * np.abs(y - size / 2) / size * i
        frame[np.abs(x - size / 2 - 4 * np.sin(y / 9 + i)) < width / 2] -= 90
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(out)


def probabilities(stdout: str) -> list[float]:
    return [row["p_Unhealthy"] for row in json.loads(stdout)["results"]]


# --- a cine, a single frame and MONOCHROME1 equal their PNGs ------------------------------------------

def test_rle_xa_cine_as_video_equals_its_frames_as_png(tmp_path):
    """Done-when of issue 39: `infer --video run.dcm` on an 8-frame RLE XA cine, one result per
    frame, each equal to the same frame saved as PNG through `infer --image` (packaged model)."""
    pixels = cine_pixels()
    cine = write_dicom(tmp_path / "run.dcm", pixels, RLELossless, FrameTime=40)
    pngs = []
    for i, frame in enumerate(pixels, 1):
        pngs += ["--image", str(tmp_path / f"frame{i}.png")]
        Image.fromarray(frame, "L").save(pngs[-1])
    start = time.monotonic()
    video = runner.invoke(app, ["infer", "--video", str(cine), "--no-display", "--json"])
    played = time.monotonic() - start
    assert video.exit_code == 0, video.output
    lines = [json.loads(line) for line in video.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(1, 9))
    as_png = runner.invoke(app, ["infer", *pngs, "--json"])
    assert as_png.exit_code == 0, as_png.output
    expected = probabilities(as_png.stdout)
    assert len(set(expected)) > 1  # the frames differ: equality below says something
    assert np.allclose([line["probabilities"]["Unhealthy"] for line in lines], expected, rtol=0, atol=1e-6)
    assert played >= 7 * 0.040  # played at its own clock (FrameTime 40 ms), not as fast as it decodes
    assert f"SOP Instance UID {UID}" in video.stderr
    as_image = runner.invoke(app, ["infer", "--image", str(cine), "--json"])
    rows = json.loads(as_image.stdout)["results"]
    assert [(r["file"], r["frame"], r["sop_instance_uid"]) for r in rows] == [(str(cine), i, UID) for i in range(1, 9)]
    assert np.allclose(probabilities(as_image.stdout), expected, rtol=0, atol=1e-6)
    picked = runner.invoke(app, ["infer", "--image", str(cine), "--frames", "2,5-6", "--json"])
    assert [r["frame"] for r in json.loads(picked.stdout)["results"]] == [2, 5, 6]
    assert probabilities(picked.stdout) == [expected[1], expected[4], expected[5]]


def test_single_frame_and_monochrome1_files_equal_their_pngs(tmp_path):
    frame = cine_pixels(1)[0]
    Image.fromarray(frame, "L").save(tmp_path / "frame.png")
    Image.fromarray(255 - frame, "L").save(tmp_path / "shown.png")  # MONOCHROME1: low values are white
    plain = write_dicom(tmp_path / "plain.dcm", frame)
    inverse = write_dicom(tmp_path / "inverse.dcm", frame, photometric="MONOCHROME1")
    for dcm, png in ((plain, "frame.png"), (inverse, "shown.png")):
        assert np.array_equal(load_image(dcm, 64), load_image(tmp_path / png, 64))
        got = runner.invoke(app, ["infer", "--image", str(dcm), "--json"])
        want = runner.invoke(app, ["infer", "--image", str(tmp_path / png), "--json"])
        assert got.exit_code == 0 and probabilities(got.stdout) == probabilities(want.stdout), got.output


# --- transfer syntaxes -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_pydicoms_lossless_examples_equal_the_uncompressed_one(name):
    """Implicit and big-endian, RLE, JPEG 2000 and JPEG-LS lossless: the same pixels as explicit little endian."""
    assert np.array_equal(grey(Path(get_testdata_file(name))), grey(Path(get_testdata_file("MR_small.dcm"))))


@pytest.mark.parametrize("name, size", [("JPGExtended.dcm", (1024, 256)), ("JPEG2000.dcm", (1024, 256)),
                                        ("JPEGLSNearLossless_08.dcm", (45, 10)), ("CT_small.dcm", (128, 128)),
                                        ("image_dfl.dcm", (512, 512))])
def test_pydicoms_lossy_and_deflated_examples_decode(name, size):
    """JPEG extended (12-bit), JPEG 2000 and JPEG-LS near-lossless, rescaled CT, deflate: a full-range grey frame."""
    frames = grey(Path(get_testdata_file(name)))
    assert frames.shape == (1, *size) and frames.min() < 40 and frames.max() > 200


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless,
                                    DeflatedExplicitVRLittleEndian])
def test_files_pydicom_writes_give_back_their_pixels(tmp_path, syntax):
    pixels = cine_pixels(3)
    assert np.array_equal(grey(write_dicom(tmp_path / "x.dcm", pixels, syntax)), pixels)


def test_jpeg_lossless_sv1_xa_written_by_gdcm(tmp_path):
    """tests/data/xa_jpeg_lossless_sv1.dcm: 2 frames of 32x32, 10 bits stored, window 512/1024, pixel
    (f, y, x) = (31x + 17y + 101f) % 1024, transcoded by GDCM 3.2.6 to JPEG Lossless SV1 (the
    catheter lab's usual syntax; nothing in the extra encodes it)."""
    f, y, x = np.mgrid[0:2, 0:32, 0:32]
    raw = write_dicom(tmp_path / "raw.dcm", ((x * 31 + y * 17 + f * 101) % 1024).astype(np.uint16), bits_stored=10,
                      WindowCenter=512, WindowWidth=1024)
    assert np.array_equal(grey(DATA / "xa_jpeg_lossless_sv1.dcm"), grey(raw))
    assert open_dicom(DATA / "xa_jpeg_lossless_sv1.dcm").delays == pytest.approx((0.0, 0.0667))


def test_jpeg_baseline_matches_pillows_decoding(tmp_path):
    frame = cine_pixels(1)[0]
    jpeg = tmp_path / "frame.jpg"
    Image.fromarray(frame, "L").save(jpeg, quality=90)
    path = write_dicom(tmp_path / "x.dcm", frame)
    from pydicom import dcmread

    ds = dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpeg.read_bytes()])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    difference = grey(path)[0].astype(int) - np.asarray(Image.open(jpeg), dtype=int)
    assert np.abs(difference).max() <= 2  # libjpeg and libjpeg-turbo may round an IDCT differently


# --- windowing -------------------------------------------------------------------------------------

def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) to 0..255, written out independently of pydicom."""
    shown = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    shown = np.where(values <= center - 0.5 - (width - 1) / 2, 0, shown)
    shown = np.where(values > center - 0.5 + (width - 1) / 2, 255, shown)
    return np.clip(np.rint(shown), 0, 255).astype(np.uint8)


def test_modality_lut_then_window_then_monochrome1(tmp_path):
    stored = (np.arange(64 * 64) % 4096).reshape(64, 64).astype(np.uint16)
    rescaled = stored * 2.0 - 1000  # the window is set on the rescaled (modality) values
    path = write_dicom(tmp_path / "w.dcm", stored, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1000,
                       WindowCenter=3000, WindowWidth=4000)
    assert np.array_equal(grey(path)[0], linear_window(rescaled, 3000, 4000))
    inverse = write_dicom(tmp_path / "m1.dcm", stored, bits_stored=12, photometric="MONOCHROME1",
                          WindowCenter=1000, WindowWidth=500)
    assert np.array_equal(grey(inverse)[0], 255 - linear_window(stored.astype(float), 1000, 500))


def test_voi_lut_sequence_wins_over_the_window(tmp_path):
    stored = (np.arange(32 * 32) % 256).reshape(32, 32).astype(np.uint16)
    lut = Dataset()
    lut.add_new("LUTDescriptor", "US", [256, 0, 16])
    lut.add_new("LUTData", "US", [int(v) for v in 65535 - np.arange(256) * 256])  # inverting, over 16 bits
    path = write_dicom(tmp_path / "lut.dcm", stored, bits_stored=8, WindowCenter=10, WindowWidth=5,
                       VOILUTSequence=Sequence([lut]))
    assert np.array_equal(grey(path)[0], np.rint((65535 - stored * 256.0) * 255 / 65535).astype(np.uint8))


def test_enhanced_files_take_the_window_from_their_functional_groups(tmp_path):
    stored = (np.arange(2 * 32 * 32) % 4096).reshape(2, 32, 32).astype(np.uint16)

    def group(center: float, width: float) -> Dataset:
        window, item = Dataset(), Dataset()
        window.WindowCenter, window.WindowWidth = center, width
        item.FrameVOILUTSequence = Sequence([window])
        return item

    path = write_dicom(tmp_path / "enhanced.dcm", stored, bits_stored=12,
                       SharedFunctionalGroupsSequence=Sequence([group(2000, 1000)]),
                       PerFrameFunctionalGroupsSequence=Sequence([Dataset(), group(500, 200)]))
    frames = grey(path)
    assert np.array_equal(frames[0], linear_window(stored[0].astype(float), 2000, 1000))
    assert np.array_equal(frames[1], linear_window(stored[1].astype(float), 500, 200))  # per frame wins


def test_notes_say_when_frames_use_their_own_range_or_carry_burned_in_text(tmp_path, model):
    stored = np.linspace(1000, 3000, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = write_dicom(tmp_path / "raw16.dcm", stored)
    assert grey(path).min() == 0 and grey(path).max() == 255
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(path), "--json"])
    assert result.exit_code == 0 and "windowed from its own darkest to brightest pixel" in result.stderr
    assert json.loads(result.stdout)["notes"] == [f"{path}: no VOI LUT or window in the header: each frame is "
                                                  "windowed from its own darkest to brightest pixel"]
    burned = write_dicom(tmp_path / "burned.dcm", cine_pixels(1)[0], BurnedInAnnotation="YES")
    assert "BurnedInAnnotation YES: the pixels carry text" in " ".join(open_dicom(burned).notes)
    assert open_dicom(write_dicom(tmp_path / "plain.dcm", cine_pixels(1)[0])).notes == ()


# --- frame clock and --frames -----------------------------------------------------------------------

@pytest.mark.parametrize("attributes, delays", [
    ({"FrameTime": 50}, (0.0, 0.05, 0.05)),
    ({"FrameTimeVector": [0, 40, 60], "FrameIncrementPointer": 0x00181065, "FrameTime": 50}, (0.0, 0.04, 0.06)),
    ({"CineRate": 10}, (0.0, 0.1, 0.1)),
    ({}, None),
])
def test_the_frame_clock_comes_from_the_header(tmp_path, attributes, delays):
    dicom = open_dicom(write_dicom(tmp_path / "c.dcm", cine_pixels(3), **attributes))
    assert (dicom.delays is None) if delays is None else dicom.delays == pytest.approx(delays)
    assert ("played at 25 frames/s" in " ".join(dicom.playback_notes)) == (delays is None)


def test_frame_numbers():
    assert parse_frame_numbers("1,4-6, 4") == [1, 4, 5, 6]
    for bad in ("0", "3-1", "a", "1,", ""):
        with pytest.raises(OptionError):
            parse_frame_numbers(bad)


# --- bad inputs: one error line each, nothing partial ------------------------------------------------

def dicom_bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name: (file, what its one error line says)."""
    folder.mkdir(exist_ok=True)
    (folder / "png.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    truncated = write_dicom(folder / "cut.dcm", cine_pixels(8), RLELossless)
    truncated.write_bytes(truncated.read_bytes()[:-3000])
    header_only = write_dicom(folder / "header.dcm", cine_pixels(1)[0])
    header_only.write_bytes(header_only.read_bytes().split(b"\xe0\x7f\x10\x00")[0])  # cut at the PixelData tag
    huge = write_dicom(folder / "huge.dcm", np.zeros((2, 8, 8), np.uint16))
    from pydicom import dcmread

    ds = dcmread(huge)
    ds.Rows = ds.Columns = 1024
    ds.NumberOfFrames = 10_000
    ds.save_as(huge)
    wide = write_dicom(folder / "wide.dcm", np.zeros((8, 8), np.uint16))
    ds = dcmread(wide)
    ds.Rows = ds.Columns = 8000
    ds.save_as(wide)
    mpeg = write_dicom(folder / "mpeg.dcm", np.zeros((8, 8), np.uint8))
    ds = dcmread(mpeg)
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds.save_as(mpeg, enforce_file_format=True)
    copies = {"sr.dcm": "reportsi.dcm", "dicomdir.dcm": "DICOMDIR-empty.dcm", "mr_cut.dcm": "MR_truncated.dcm",
              "rgb.dcm": "SC_rgb_rle.dcm", "ybr.dcm": "examples_ybr_color.dcm", "palette.dcm": "examples_palette.dcm"}
    for name, source in copies.items():
        shutil.copy(get_testdata_file(source), folder / name)
    return {
        "not DICOM": (folder / "png.dcm", "not a DICOM file (no 'DICM' marker"),
        "structured report": (folder / "sr.dcm", "no pixel data (a Basic Text SR Storage, not an image)"),
        "DICOMDIR": (folder / "dicomdir.dcm", "a DICOMDIR (an index of other files), not an image"),
        "truncated native": (folder / "mr_cut.dcm", "truncated: 8,130 of 8,192 bytes of pixel data"),
        "truncated RLE": (truncated, "corrupt or truncated: its data set ends before it is complete"),
        "cut before the pixels": (header_only, "the header describes an image but no pixel data follows"),
        "RGB": (folder / "rgb.dcm", "colour frames (RGB): only grey-scale (MONOCHROME1 / MONOCHROME2)"),
        "YBR": (folder / "ybr.dcm", "colour frames (YBR_FULL_422)"),
        "palette": (folder / "palette.dcm", "colour frames (PALETTE COLOR)"),
        "memory guard": (huge, "10000 frame(s) of 1024x1024 at 16 bits are 20,971,520,000 bytes, over the "
                               "1,073,741,824-byte limit"),
        "frame decode budget": (wide, "8000x8000 frames need about 1,408 MB each to decode, over the 256 MB limit"),
        "no decoder at all": (mpeg, "no decoder reads MPEG-4 AVC/H.264 High Profile / Level 4.1 pixel data"),
    }


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return dicom_bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("case", ["not DICOM", "structured report", "DICOMDIR", "truncated native", "truncated RLE",
                                  "cut before the pixels", "RGB", "YBR", "palette", "memory guard",
                                  "frame decode budget", "no decoder at all"])
def test_each_bad_input_is_one_error_line(bad_files, model, case):
    path, message = bad_files[case]
    image = runner.invoke(app, ["infer", "--model", str(model), "--image", str(path)])
    video = runner.invoke(app, ["infer", "--model", str(model), "--video", str(path), "--no-display", "--json"])
    for result in (image, video):
        assert result.exit_code == 1, result.output
        line = one_error_line(result)
        assert line.startswith(f"error: {path}: ") and message in line, line
    assert video.stdout == ""  # refused from the header: not a frame before the error


def test_undecodable_syntax_names_the_package(tmp_path, model):
    """A JPEG-LS file where pylibjpeg-libjpeg is too old for pydicom (as good as missing: a stub
    shadows it in a fresh process), and a .dcm where pydicom is missing: the line names what to install."""
    jpeg_ls = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    stubs = {"libjpeg": "__version__ = '1.0.0'\ndecode = decode_pixel_data = None\n",
             "pydicom": "raise ImportError('pydicom is not installed')\n"}
    expected = {"libjpeg": "JPEG-LS Lossless Image Compression pixel data needs a decoder: pip install pylibjpeg "
                           'pylibjpeg-libjpeg (both come with pip install "artery-edge[dicom]")',
                "pydicom": 'reading DICOM needs the dicom extra: pip install "artery-edge[dicom]"'}
    for module, stub in stubs.items():
        (tmp_path / module / module).mkdir(parents=True)
        (tmp_path / module / module / "__init__.py").write_text(stub)
        result = subprocess.run([sys.executable, "-m", "artery_edge.cli", "infer", "--model", str(model), "--image",
                                 jpeg_ls], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(tmp_path / module)})
        assert result.returncode == 1
        assert one_error_line(result) == f"error: {jpeg_ls}: {expected[module]}"


def test_a_deflated_data_set_that_would_inflate_past_the_limit_is_refused_unread(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "bomb.dcm", np.zeros((8, 8), np.uint8), DeflatedExplicitVRLittleEndian)
    from pydicom import dcmread

    ds = dcmread(path)
    ds.add_new(0x00091010, "OB", bytes(200_000))  # zeros: a few hundred bytes once deflated
    ds.save_as(path, enforce_file_format=True)
    assert path.stat().st_size < 5_000
    monkeypatch.setattr(dicom_module, "MAX_DICOM_BYTES", 100_000)
    with pytest.raises(ImageError, match="the deflated data set inflates past the 100,000-byte limit"):
        open_dicom(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] + b"\xff" * 64)  # the deflate stream broken half way
    with pytest.raises(ImageError, match="corrupt deflated DICOM data set"):
        open_dicom(path)


def test_frames_out_of_range_and_cines_where_one_image_is_needed(tmp_path, model):
    cine = write_dicom(tmp_path / "run.dcm", cine_pixels(3))
    result = runner.invoke(app, ["infer", "--model", str(model), "--image", str(cine), "--frames", "2-4"])
    assert result.exit_code == 1 and one_error_line(result) == f"error: {cine}: has 3 frame(s), no frame 4"
    with pytest.raises(ImageError, match="3 frames where one image is needed"):
        load_image(cine, 8)
    usage = runner.invoke(app, ["infer", "--model", str(model), "--video", str(cine), "--no-display",
                                "--frames", "1-2"])
    assert usage.exit_code == 2 and "--frames must be a number of frames for --camera / --video" in usage.output


def test_class_folders_read_single_frame_files_and_skip_cines(tmp_path):
    from artery_edge.trainer.scan import scan_dataset

    for label in ("Healthy", "Unhealthy"):
        write_dicom(tmp_path / label / "one.dcm", cine_pixels(1)[0])
    write_dicom(tmp_path / "Healthy" / "run.dcm", cine_pixels(3))
    dataset = scan_dataset(tmp_path)
    assert sorted(s.path.name for s in dataset.samples) == ["one.dcm", "one.dcm"]
    assert dataset.skipped == [f"{tmp_path.resolve() / 'Healthy' / 'run.dcm'}: 3 frames where one image is needed "
                               "(infer --image gives one result per frame)"]


# --- no patient data leaves --------------------------------------------------------------------------

IDENTIFYING = {
    "PatientName": f"{MARK}^Jane", "PatientID": f"{MARK}-ID", "PatientBirthDate": MARK, "PatientSex": MARK,
    "PatientAge": MARK, "PatientAddress": f"1 {MARK} Road", "PatientTelephoneNumbers": MARK,
    "OtherPatientIDs": f"{MARK}-OTHER", "OtherPatientNames": f"{MARK}^Alias", "PatientComments": MARK,
    "InstitutionName": f"{MARK} Hospital", "InstitutionAddress": MARK, "InstitutionalDepartmentName": MARK,
    "ReferringPhysicianName": f"{MARK}^Ref", "PerformingPhysicianName": f"{MARK}^Perf", "OperatorsName": MARK,
    "NameOfPhysiciansReadingStudy": MARK, "RequestingPhysician": MARK, "AccessionNumber": MARK,
    "StudyDate": MARK, "StudyTime": MARK, "SeriesDate": MARK, "ContentDate": MARK, "AcquisitionDateTime": MARK,
    "StudyID": MARK, "StudyDescription": MARK, "SeriesDescription": MARK, "StationName": MARK,
    "DeviceSerialNumber": MARK, "ImageComments": MARK, "WindowCenterWidthExplanation": MARK,
}


def phi_dataset_attributes() -> dict:
    other = Dataset()
    other.PatientID = f"{MARK}-SEQ"
    return {**IDENTIFYING, "OtherPatientIDsSequence": Sequence([other])}


def write_phi_files(folder: Path) -> dict[str, Path]:
    files = {
        "cine": write_dicom(folder / "Unhealthy" / "run.dcm", cine_pixels(4), RLELossless, FrameTime=20,
                            WindowCenter=128, WindowWidth=256, uid=UID + ".1", **phi_dataset_attributes()),
        "frame": write_dicom(folder / "Healthy" / "one.dcm", cine_pixels(1)[0], uid=UID + ".2",
                             WindowCenter=128, WindowWidth=256, **phi_dataset_attributes()),
        "frame2": write_dicom(folder / "Unhealthy" / "one.dcm", cine_pixels(2)[1], uid=UID + ".5",
                              **phi_dataset_attributes()),
        "raw16": write_dicom(folder / "raw16.dcm", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64),
                             uid=UID + ".3", **phi_dataset_attributes()),
        "colour": write_dicom(folder / "colour.dcm", cine_pixels(1)[0], photometric="RGB", uid=UID + ".4",
                              **phi_dataset_attributes()),
    }
    from pydicom import dcmread

    for path in files.values():  # a private tag, and a number pydicom cannot parse (its warning quotes it)
        ds = dcmread(path)
        ds.private_block(0x0011, f"{MARK} creator", create=True).add_new(0x01, "LO", MARK)
        ds.InstanceNumber = "123456"
        ds.save_as(path, enforce_file_format=True)
        assert path.read_bytes().count(b"123456") == 1
        path.write_bytes(path.read_bytes().replace(b"123456", MARK.encode()))
    return files


def test_no_patient_data_in_any_output(tmp_path):
    """Every identifying attribute carries MARK; every command that reads images runs over the files;
    MARK is in no stdout, stderr, log, JSON, CSV, page or API answer (issue 39, point 3)."""
    serve_helpers = pytest.importorskip("tests.serve_helpers")
    pytest.importorskip("tornado", reason="the serve extra (tornado) is not installed")
    data = tmp_path / "data"
    files = write_phi_files(data)
    model = build_tiny_classifier(tmp_path / "tiny.tflite", "uint8",
                                  metadata=ModelMetadata(labels=LABELS, input_size=8, precision="int8"))
    m = ["--model", str(model)]
    whole_frame = build_tiny_map_model(tmp_path / "map.tflite", 32, "uint8", metadata=ModelMetadata(
        labels=["stenosis"], input_size=32, precision="int8", positive_label="stenosis", threshold=0.5, task="map",
        decoding={"min_area": 2}))
    outputs: list[str] = []
    runs = [
        ["infer", *m, "--image", str(data)],
        ["infer", *m, "--image", str(data), "--json", "--csv", str(tmp_path / "out.csv")],
        ["infer", *m, "--image", str(data), "--show-header"],
        ["infer", *m, "--video", str(files["cine"]), "--no-display", "--json", "--show-header"],
        ["infer", *m, "--video", str(files["raw16"]), "--no-display"],
        ["infer", *m, "--video", str(files["colour"]), "--no-display"],
        ["scan", str(data), "--model", str(whole_frame), "--json", "--out", str(tmp_path / "overlays")],
        ["scan", str(files["cine"]), "--model", str(whole_frame)],
    ]
    for args in runs:
        result = cli(*args)
        outputs += [result.stdout, result.stderr]
        assert "Traceback" not in result.stderr, result.stderr
    assert "PatientName PN: <masked>" in outputs[5] and "Rows US: 64" in outputs[5]  # --show-header shows, masked
    assert "(0011,1001) private LO: <masked>" in outputs[5]
    outputs.append((tmp_path / "out.csv").read_text())
    overlays = sorted((tmp_path / "overlays").iterdir())
    assert len(overlays) == 7  # scan's overlay PNGs: 4 frames of the cine, 2 single frames, raw16
    for overlay in overlays:
        outputs += [overlay.read_bytes().decode("latin-1"), json.dumps(Image.open(overlay).text), overlay.name]
    from artery_edge.trainer.scan import scan_dataset

    scanned = scan_dataset(data)  # what train and evaluate read: single frames in, the cine skipped, said
    assert len(scanned.samples) == 2 and len(scanned.skipped) == 1
    outputs += scanned.skipped
    with serve_helpers.running_server(tmp_path, *m, "--video", str(files["cine"])) as base:
        for name in ("frame", "cine", "raw16", "colour"):
            body, headers = serve_helpers.multipart("image", files[name].name, files[name].read_bytes(),
                                                    "application/dicom")
            status, _, answer = serve_helpers.request(base, "POST", "/v1/predict", body, headers)
            assert status == (400 if name == "colour" else 200), answer
            outputs.append(answer.decode())
        raw = serve_helpers.request(base, "POST", "/v1/predict", files["cine"].read_bytes())
        assert raw[0] == 200 and len(json.loads(raw[2])["results"]) == 4  # sniffed as DICOM without a name
        outputs.append(raw[2].decode())
        def decided() -> dict:
            status = serve_helpers.get_json(base, "/v1/status")
            return status if status["recent"] else {}

        status = serve_helpers.wait_until(decided, 60, "decisions of the DICOM cine")
        assert f"SOP Instance UID {UID}.1" in status["source"]
        outputs += [json.dumps(status), json.dumps(serve_helpers.get_json(base, "/v1/model"))]
        outputs.append(serve_helpers.request(base, "GET", "/")[2].decode())
    outputs += [log.read_text() for log in tmp_path.glob("serve-*.log")]
    leaks = [text for text in outputs if MARK in text]
    assert not leaks, leaks[0]
    assert any(UID + ".1" in text for text in outputs[2:4])  # named by its SOP Instance UID instead
