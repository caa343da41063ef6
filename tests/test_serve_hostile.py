"""`artery-edge serve` under hostile input: every bad request gets a clear JSON error with the
right status, no CORS header, and the server still answers /healthz afterwards. Also the
token (401 without it, the page's cookie with it) and the refusals before it starts. TF-free."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

import pytest
from PIL import Image

from artery_edge.edge.imaging import MAX_IMAGE_PIXELS
from tests.bad_inputs import cli, one_error_line
from tests.serve_helpers import get_json, multipart, png_bytes, request, running_server, server_process, wait_until

pytest.importorskip("tornado", reason="the serve extra (tornado) is not installed")

LIMIT_MB = 1
TOKEN = "s3cret/token+for=the-tests-0123456789"  # base64 characters survive the cookie too


def bomb_png() -> bytes:
    """A small PNG (a few KB) that decodes to more pixels than the runtime's limit."""
    out = io.BytesIO()
    Image.new("1", (10_000, MAX_IMAGE_PIXELS // 10_000 + 1)).save(out, "PNG", optimize=True)
    return out.getvalue()


def upload(name: str, data: bytes, field: str = "image") -> tuple[bytes, dict]:
    return multipart(field, name, data)


BIG = b"\0" * (LIMIT_MB * 2**20 + 1)
TRUNCATED = png_bytes(3)[:200]
GOOD, FORM = upload("x.png", png_bytes())
EVIL = "http://evil.example"
# (what, method, path, body, headers, status, words of the error)
BAD_REQUESTS = [
    ("upload over the size limit (Content-Length)", "POST", "/v1/predict", *upload("big.png", BIG), 413, "limit"),
    ("upload over the size limit (chunked, no length)", "POST", "/v1/predict",
     lambda: iter([b"\0" * 65536] * (LIMIT_MB * 16 + 2)), {"Content-Type": "image/png"}, 413, "limit"),
    ("decompression bomb (64 Mpx PNG of a few KB)", "POST", "/v1/predict", lambda: upload("bomb.png", bomb_png())[0],
     FORM, 400, "pixel limit"),
    ("not an image (text)", "POST", "/v1/predict", *upload("notes.png", b"just some text\n" * 10), 400,
     "not a readable image"),
    ("truncated PNG", "POST", "/v1/predict", *upload("cut.png", TRUNCATED), 400, "truncated"),
    ("empty upload", "POST", "/v1/predict", *upload("empty.png", b""), 400, "empty"),
    ("raw empty body", "POST", "/v1/predict", b"", {"Content-Type": "image/png"}, 400, "empty"),
    ("form without the image field", "POST", "/v1/predict", *upload("x.png", png_bytes(), field="file"), 400,
     '"image"'),
    ("malformed multipart (no boundary)", "POST", "/v1/predict", b"--x\r\n\r\n", {"Content-Type": "multipart/form-data"},
     400, "malformed"),
    ("unknown path", "GET", "/nope", None, {}, 404, "no such path"),
    ("unknown API version", "GET", "/v2/model", None, {}, 404, "no such path"),
    ("path traversal ../", "GET", "/static/../pyproject.toml", None, {}, 404, "no such"),
    ("path traversal %2e%2e%2f", "GET", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", None, {}, 404, "no such"),
    ("path traversal to a package file", "GET", "/static/..%2fapp.py", None, {}, 404, "no such"),
    ("directory listing /static/", "GET", "/static/", None, {}, 404, "no such path"),
    ("directory listing /v1/", "GET", "/v1/", None, {}, 404, "no such path"),
    ("wrong method GET /v1/predict", "GET", "/v1/predict", None, {}, 405, "Method Not Allowed"),
    ("wrong method DELETE /v1/model", "DELETE", "/v1/model", None, {}, 405, "Method Not Allowed"),
    ("wrong method POST /healthz", "POST", "/healthz", b"{}", {}, 405, "Method Not Allowed"),
    ("wrong method PUT /", "PUT", "/", b"x", {}, 405, "Method Not Allowed"),
    ("unknown method BREW", "BREW", "/", None, {}, 405, "Method Not Allowed"),
    ("OPTIONS", "OPTIONS", "/v1/predict", None, {}, 405, "Method Not Allowed"),
    ("CORS preflight OPTIONS from another origin", "OPTIONS", "/v1/predict", None,
     {"Origin": EVIL, "Access-Control-Request-Method": "POST"}, 403, "cross-origin"),
    ("cross-origin POST of an image", "POST", "/v1/predict", GOOD, {**FORM, "Origin": EVIL}, 403, "cross-origin"),
    ("another site's <img> on the stream (no Origin, Sec-Fetch-Site)", "GET", "/v1/stream", None,
     {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}, 403, "cross-site"),
    ("a sibling site's fetch of the model", "GET", "/v1/model", None, {"Sec-Fetch-Site": "same-site"}, 403, "cross-site"),
    ("foreign Host header (DNS rebinding)", "GET", "/v1/model", None, {"Host": "evil.example:8000"}, 403, "host"),
    ("live stream without a camera", "GET", "/v1/stream", None, {}, 404, "no camera"),
    ("decision stream without a camera", "GET", "/v1/decisions", None, {}, 404, "no camera"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("hostile"), "--max-upload-mb", str(LIMIT_MB)) as base:
        yield base


def healthy(base: str) -> None:
    status, _, body = request(base, "GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok", (status, body)


@pytest.mark.parametrize("what, method, path, body, headers, status, words", BAD_REQUESTS,
                         ids=[r[0] for r in BAD_REQUESTS])
def test_a_bad_request_gets_a_clear_json_error_and_the_server_keeps_serving(
        server, what, method, path, body, headers, status, words):
    got, response_headers, raw = request(server, method, path, body() if callable(body) else body, headers)
    answer = json.loads(raw)
    print(f"{what}: {method} {path} -> {got} {answer['error']}")
    assert got == status and answer["status"] == status, (got, answer)
    assert words.lower() in answer["error"].lower(), answer
    assert response_headers["content-type"].startswith("application/json")
    assert "access-control-allow-origin" not in response_headers
    if status == 405:
        assert "allow" in response_headers
    healthy(server)


def test_garbage_and_silent_connections_do_not_stop_it(server):
    host, port = server.removeprefix("http://").rsplit(":", 1)
    silent = socket.create_connection((host, int(port)))  # opens and sends nothing (slowloris-like)
    with socket.create_connection((host, int(port))) as garbage:
        garbage.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        garbage.settimeout(10)
        try:
            garbage.recv(1024)  # a 400 or a closed connection; either way not a crash
        except (ConnectionResetError, TimeoutError):
            pass
    healthy(server)
    silent.close()


def test_a_good_upload_after_all_that_is_classified(server):
    status, _, raw = request(server, "POST", "/v1/predict", *upload("ok.png", png_bytes(7)))
    assert status == 200 and json.loads(raw)["results"][0]["file"] == "ok.png"


def test_the_page_itself_and_tools_without_fetch_metadata_are_served(server):
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        assert request(server, "GET", "/v1/model", headers=headers)[0] == 200, headers
    assert request(server, "GET", "/", headers={"Sec-Fetch-Site": "cross-site"})[0] == 200  # a link to the page


def test_no_cors_header_even_for_a_cross_origin_read(server):
    status, headers, _ = request(server, "GET", "/v1/model", headers={"Origin": "http://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("token")
    (folder / "token").write_text(TOKEN + "\n")
    with running_server(folder, "--token-file", str(folder / "token")) as base:
        yield base


def test_with_a_token_every_api_route_needs_it(guarded):
    for path in ("/v1/model", "/v1/status"):
        status, headers, raw = request(guarded, "GET", path)
        assert status == 401 and "token" in json.loads(raw)["error"] and headers["www-authenticate"].startswith("Bearer")
    wrong = "x" * len(TOKEN)
    assert request(guarded, "GET", "/v1/model", headers={"Authorization": f"Bearer {wrong}"})[0] == 401
    assert request(guarded, "POST", "/v1/predict", GOOD, FORM)[0] == 401
    assert get_json(guarded, "/v1/model", headers={"Authorization": f"Bearer {TOKEN}"})["labels"]
    for public in ("/", "/static/app.js", "/healthz"):  # the page must load to ask for the token
        assert request(guarded, "GET", public)[0] == 200


def test_the_page_gets_an_httponly_cookie_once(guarded):
    assert request(guarded, "POST", "/v1/session", b"", {"Authorization": "Bearer nope-nope-nope-nope"})[0] == 401
    status, headers, _ = request(guarded, "POST", "/v1/session", b"", {"Authorization": f"Bearer {TOKEN}"})
    cookie = headers["set-cookie"]
    assert status == 204 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert get_json(guarded, "/v1/model", headers={"Cookie": cookie.split(";")[0]})["sha256"]


def test_another_address_without_a_token_is_refused_before_it_listens():
    line = one_error_line(result := cli("serve", "--host", "0.0.0.0", "--port", "0"))
    assert result.returncode == 2 and "--token-file" in line


@pytest.mark.parametrize("token, words", [("short", "at least 16"), ("has spaces in it, which is bad", "at least 16")])
def test_a_weak_token_is_refused(tmp_path, token, words):
    (tmp_path / "token").write_text(token)
    result = cli("serve", "--host", "0.0.0.0", "--port", "0", "--token-file", str(tmp_path / "token"))
    assert result.returncode == 1 and words in one_error_line(result)


@pytest.mark.parametrize("args, code, words", [
    (["--camera", "0", "--video", "x.avi"], 2, "at most one"),
    (["--video", "no-such-video.avi"], 1, "no such file"),
    (["--camera", "front"], 2, "camera index"),
    (["--camera", "200"], 2, "camera index from 0 to 99"),  # OpenCV: V4L2's camera 0
    (["--token-file", "no-such-token"], 1, "cannot read"),
    (["--max-upload-mb", "0"], 2, "--max-upload-mb"),
    (["--model", "no-such-model.tflite"], 1, "no such model file"),
])
def test_bad_options_are_one_error_line(args, code, words):
    result = cli("serve", "--port", "0", *args)
    assert result.returncode == code and words in one_error_line(result)


def test_an_address_that_cannot_be_had_is_named(tmp_path):
    """A port taken by another process, a host name that resolves to nothing: the address in the line."""
    (tmp_path / "token").write_text("t" * 32)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = cli("serve", "--port", port)
    assert result.returncode == 1 and f"cannot listen on --host 127.0.0.1 --port {port}" in one_error_line(result)
    result = cli("serve", "--port", "0", "--host", "no-such-host.invalid", "--token-file", str(tmp_path / "token"))
    assert result.returncode == 1 and "--host no-such-host.invalid" in one_error_line(result)


def test_without_the_serve_extra_it_says_what_to_install():
    hide_tornado = ("import sys; sys.modules['tornado'] = None; sys.argv = ['artery-edge', 'serve', '--port', '0']; "
                    "from artery_edge.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", hide_tornado], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert result.returncode == 1 and 'pip install "artery-edge[serve]"' in one_error_line(result)


def test_head_healthz_answers_like_get_without_a_body(server):
    status, headers, body = request(server, "HEAD", "/healthz")
    assert status == 200 and body == b"" and headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer "])
def test_the_bearer_scheme_is_case_insensitive(guarded, scheme):
    """RFC 9110: an authentication scheme matches whatever its case (and a second space is slack)."""
    assert get_json(guarded, "/v1/model", headers={"Authorization": f"{scheme} {TOKEN}"})["labels"]


def test_a_long_multipart_header_is_not_echoed(server):
    """A part's header whose 5,000-character name is not a token: the parser quotes it whole;
    the answer (and the log) shows a short start of it only."""
    header = "x y" * 1700 + ": value"
    body = f"--b\r\n{header}\r\n\r\ndata\r\n--b--\r\n".encode()
    status, _, raw = request(server, "POST", "/v1/predict", body, {"Content-Type": "multipart/form-data; boundary=b"})
    error = json.loads(raw)["error"]
    assert status == 400 and "malformed form upload" in error and len(error) < 300, error


def stalled_upload(base: str, declared: int) -> socket.socket:
    """An upload that declares ``declared`` bytes, sends a tenth of them and waits."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = socket.create_connection((host, int(port)))
    connection.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
                       f"Content-Length: {declared}\r\n\r\n".encode() + b"\0" * (declared // 10))
    return connection


def test_uploads_in_flight_are_bounded_and_their_slots_come_back(tmp_path):
    """Stalled uploads each hold a body: past MAX_UPLOADS the next gets 503 at once; when they
    go, the slots (and their memory) are given back and an upload is classified again. A
    client's file name with CR, LF and ESC reaches the log escaped, one line."""
    from artery_edge.edge.serve.app import MAX_UPLOADS

    with server_process(tmp_path, "--max-upload-mb", str(LIMIT_MB)) as (_, base):
        stalled = [stalled_upload(base, LIMIT_MB * 2**20 - 1000) for _ in range(MAX_UPLOADS)]
        try:
            wait_until(lambda: request(base, "POST", "/v1/predict", *upload("next.png", png_bytes()))[0] == 503,
                       30, "the upload past the bound to get 503")
            status, _, raw = request(base, "POST", "/v1/predict", *upload("next.png", png_bytes()))
            assert status == 503 and str(MAX_UPLOADS) in json.loads(raw)["error"]
        finally:
            for connection in stalled:
                connection.close()
        wait_until(lambda: request(base, "POST", "/v1/predict", *upload("ok.png", png_bytes()))[0] == 200,
                   30, "an upload to be classified after the stalled ones closed")
        # a header line holds no raw CR/LF, but RFC 5987 (filename*=) percent-encodes them
        forged = "filename*=UTF-8''x.png%0D%0A2099-01-01%2000:00:00%20ERROR%20forged%20line%1B[2J"
        body, headers = upload("placeholder.png", b"not an image at all")
        body = body.replace(b'filename="placeholder.png"', forged.encode())
        status, _, raw = request(base, "POST", "/v1/predict", body, headers)
        assert status == 400 and "forged line" in json.loads(raw)["error"], raw
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert " 500 " not in log, log  # a client gone mid-body ends its request; 500 is for a model failure
    assert "x.png\\r\\n2099-01-01 00:00:00 ERROR forged line\\x1b[2J" in log, log
    assert not any(line.startswith("2099-01-01") for line in log.splitlines()) and "\x1b" not in log


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_token_file_other_users_can_read_is_warned_about(tmp_path, mode, warned):
    from artery_edge.edge.serve.options import token_file_warning

    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(mode)
    warning = token_file_warning(token)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith("warning:") and f"{mode:03o}" in warning and f"chmod 600 {token}" in warning


def test_serve_says_so_when_its_token_file_is_world_readable(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    with server_process(tmp_path, "--token-file", str(token)):
        pass
    assert f"warning: --token-file {token} can be read by other users" in next(tmp_path.glob("serve-*.log")).read_text()


def test_a_stop_during_an_upload_answers_503_and_exits_at_once(tmp_path):
    """SIGTERM while a body is still arriving: that client gets 503 (retry later; 500 would say
    the model failed) and the process exits 0 within seconds."""
    import signal
    import time

    with server_process(tmp_path) as (process, base):
        connection = stalled_upload(base, 2**20)
        time.sleep(0.5)  # the request is in flight
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        connection.settimeout(10)
        answer = connection.recv(200)
        process.wait(10)
        connection.close()
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert process.returncode == 0 and time.monotonic() - started < 3
