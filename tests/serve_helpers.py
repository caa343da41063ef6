"""Helpers of the serve tests (TF-free): the server started as a user starts it, on a free
loopback port, plain HTTP requests to it, and a small synthetic video for the live view."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image

START_TIMEOUT_S = 120  # the machine may be busy: importing and loading the model can take a while


@contextlib.contextmanager
def running_server(tmp_path: Path, *args: str) -> Iterator[str]:
    """``artery-edge serve --port 0 ARGS`` in a subprocess; yields its base URL (http://127.0.0.1:PORT)."""
    with server_process(tmp_path, *args) as (_, base):
        yield base


@contextlib.contextmanager
def server_process(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """As :func:`running_server`, also yielding the process (its pid, for memory figures)."""
    log = tmp_path / f"serve-{time.monotonic_ns()}.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "artery_edge.cli", "serve", "--port", "0", *args],
                                   stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process, wait_for_address(process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"serve exited {process.returncode}:\n{log.read_text()}"


def wait_for_address(process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.search(r"serving (http://[^/ ]+)/", log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode} before listening:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"serve did not start in {START_TIMEOUT_S} s:\n{log.read_text()}")


def request(base: str, method: str, path: str, body: Optional[bytes] = None,
            headers: Optional[dict] = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    """One request on a fresh connection: (status, headers with lower-case names, body)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        try:
            connection.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before the whole body was sent (a 413 on its length): read that answer
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get_json(base: str, path: str, **kwargs) -> dict:
    status, _, body = request(base, "GET", path, **kwargs)
    assert status == 200, (path, status, body)
    return json.loads(body)


def multipart(field: str, filename: str, data: bytes, kind: str = "image/png") -> tuple[bytes, dict]:
    """A multipart/form-data body with one file, as a browser form or ``curl -F`` sends it."""
    boundary = "artery-edge-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {kind}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png_bytes(seed: int = 0, size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def write_video(path: Path, frames: int = 30, fps: float = 10.0, size: tuple[int, int] = (160, 120)) -> Path:
    """A short MJPG .avi with a bright vessel-like band sliding across a grey background."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for i in range(frames):
        frame = np.full((height, width, 3), 70, np.uint8)
        left = width // 4 + (i * 3) % (width // 2)
        frame[:, left:left + 14] = 210
        writer.write(frame)
    writer.release()
    return path


def read_events(base: str, until, timeout: float = 90) -> list[tuple[str, dict]]:
    """Server-sent events from /v1/decisions until ``until(events)`` holds."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.request("GET", "/v1/decisions")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    events, kind = [], None
    try:
        while not until(events):
            line = response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: "):])))
    finally:
        connection.close()
    return events


def mjpeg_frames(base: str, count: int, timeout: float = 60) -> list[Image.Image]:
    """The first ``count`` JPEG frames of /v1/stream, checked to be MJPEG."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.request("GET", "/v1/stream")
    response = connection.getresponse()
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    frames = []
    try:
        while len(frames) < count:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                header += response.fp.readline()
            length = int(re.search(rb"Content-Length: (\d+)", header).group(1))
            frames.append(Image.open(io.BytesIO(response.fp.read(length))))
            response.fp.readline()
    finally:
        connection.close()
    return frames


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
