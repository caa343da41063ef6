"""The serve page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium), as a person uses it: the live view of a video file shows decisions, says "camera
lost" when the video ends and goes live again; an image uploaded through the form gets the
label the API gives; with a token the page asks for it once; without a camera it says so and
still classifies uploads; with a whole-frame model it shows lesions (live and for an uploaded
frame) instead of a label. Screenshots land in tmp_path (their paths are printed). TF-free."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from PIL import Image

from artery_edge.edge.reference import packaged_reference
from tests.serve_helpers import multipart, png_bytes, request, running_server, write_video
from tests.test_frames import MAP_META
from tests.test_live_frames import STEADY, frame_pixels, write_clip
from tests.tflite_builder import build_tiny_map_model

pytest.importorskip("tornado", reason="the serve extra (tornado) is not installed")
pytest.importorskip("cv2", reason="OpenCV writes the test video (dev extra)")
pytest.importorskip("selenium", reason="selenium is not installed (dev extra)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="no headless browser: apt-get install chromium chromium-driver (CI does)")
WAIT_S = 90  # the machine may be busy


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1100", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # Debian's driver: nothing downloaded
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def wait_for(driver, condition, what: str):
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def upload_and_compare(driver, base: str, image, headers=None) -> str:
    """Upload through the page's form; the label shown must be the API's answer for the same file."""
    driver.find_element(By.ID, "upload-file").send_keys(str(image))
    driver.find_element(By.ID, "upload-button").click()
    shown = wait_for(driver, lambda d: text(d, "upload-label"), "the uploaded image's label")
    body, form = multipart("image", image.name, image.read_bytes())
    status, _, body = request(base, "POST", "/v1/predict", body, {**form, **(headers or {})})
    assert status == 200, body
    answer = json.loads(body)["results"][0]
    assert shown == answer["label"]
    assert f"{answer['p_Unhealthy']:.3f}" in text(driver, "upload-detail")
    return shown


def screenshot(driver, path) -> None:
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def test_the_live_page_shows_decisions_camera_lost_and_classifies_an_upload(tmp_path, browser):
    video = write_video(tmp_path / "angio.avi", frames=30, fps=10)
    image = tmp_path / "patch.png"
    image.write_bytes(png_bytes(11, size=96))
    with running_server(tmp_path, "--video", str(video)) as base:
        browser.get(base + "/")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#decisions tbody tr"), "a live decision")
        assert text(browser, "ov-label") in ("Healthy", "Unhealthy")
        assert "threshold 0.456" in text(browser, "ov-threshold") and "FPS" in text(browser, "ov-fps")
        wait_for(browser, lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") > 0,
                 "the MJPEG frame")
        wait_for(browser, lambda d: "camera lost" in text(d, "camera-status"), '"camera lost" when the video ends')
        wait_for(browser, lambda d: text(d, "camera-status").startswith("live"), "the video re-opened")
        sha256 = hashlib.sha256(packaged_reference().read_bytes()).hexdigest()
        assert sha256 in text(browser, "model") and "Healthy, Unhealthy" in text(browser, "model")
        upload_and_compare(browser, base, image)
        wait_for(browser, lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") > 0,
                 "the frame after re-opening")
        screenshot(browser, tmp_path / "serve-live.png")


def test_with_a_token_the_page_asks_once_and_without_a_camera_says_so(tmp_path, browser):
    token = "page-test-token-0123456789abcdef"
    (tmp_path / "token").write_text(token)
    image = tmp_path / "upload.png"
    image.write_bytes(png_bytes(4, size=80))
    with running_server(tmp_path, "--token-file", str(tmp_path / "token")) as base:
        browser.get(base + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "login").is_displayed(), "the token prompt")
        browser.find_element(By.ID, "token").send_keys("wrong-token-wrong-token")
        browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
        wait_for(browser, lambda d: "not accepted" in text(d, "login-error"), "a refused token")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
        wait_for(browser, lambda d: "no camera" in text(d, "camera-status"), '"no camera" on the page')
        assert not browser.find_element(By.ID, "live-view").is_displayed()
        upload_and_compare(browser, base, image, {"Authorization": f"Bearer {token}"})
        screenshot(browser, tmp_path / "serve-upload-only.png")
        browser.refresh()  # asked once: the HttpOnly cookie opens the page from now on
        wait_for(browser, lambda d: "no camera" in text(d, "camera-status"), "the page without a second prompt")
        assert not browser.find_element(By.ID, "login").is_displayed()
        assert browser.execute_script("return document.cookie") == ""  # the token is not readable by scripts


def test_with_a_whole_frame_model_the_page_shows_lesions(tmp_path, browser):
    model = build_tiny_map_model(tmp_path / "map.tflite", 32, "uint8", metadata=MAP_META)
    frame = tmp_path / "frame.png"
    Image.fromarray(frame_pixels([STEADY])).save(frame)
    with running_server(tmp_path, "--model", str(model), "--video", str(write_clip(tmp_path / "run.avi", 40))) as base:
        browser.get(base + "/")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#decisions tbody tr"), "a live scan")
        assert text(browser, "ov-label") in ("1 lesion", "2 lesions") and text(browser, "ov-p").startswith("peak ")
        assert text(browser, "label-head") == "lesions" and text(browser, "chart-title").startswith("peak")
        assert "on the stenosis map" in text(browser, "model")
        wait_for(browser, lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") > 0,
                 "the MJPEG frame with the map drawn")
        assert text(browser, "upload-title") == "Scan a frame"
        browser.find_element(By.ID, "upload-file").send_keys(str(frame))
        browser.find_element(By.ID, "upload-button").click()
        shown = wait_for(browser, lambda d: text(d, "upload-label"), "the uploaded frame's lesions")
        status, _, body = request(base, "POST", "/v1/predict", *multipart("image", "frame.png", frame.read_bytes()))
        (lesion,) = json.loads(body)["results"][0]["lesions"]
        assert status == 200 and shown == "1 lesion"
        assert f"[{', '.join(str(int(v + 0.5)) for v in lesion['box'])}] {lesion['score']:.3f}" in text(
            browser, "upload-detail")
        screenshot(browser, tmp_path / "serve-whole-frame.png")
