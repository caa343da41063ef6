"""The HTTP side of ``serve`` (Tornado): the page, its assets and the ``/v1`` API.

Safe by default: every ``/v1`` route needs the token when there is one (a Bearer header, or the
HttpOnly cookie the page gets once from ``POST /v1/session``), compared in constant time; without
a token (loopback only) a request must name a loopback host, so a web page elsewhere cannot
rebind its name to 127.0.0.1 and read the API; a state-changing request from another origin is
refused; no CORS header is ever sent. Every error is a JSON ``{"error", "status"}`` document and
the server keeps serving. Uploads go through ``classify_path`` on a file, the very path
``infer --image`` takes (its decompression-bomb and format guards included; a DICOM file too),
or with a whole-frame model through ``scan_path``, the path ``scan`` takes.
"""

from __future__ import annotations

import hmac
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import urlsplit

import tornado.ioloop
import tornado.locks
import tornado.queues
import tornado.web
from tornado.httputil import HTTPInputError, parse_body_arguments
from tornado.iostream import StreamClosedError
from tornado.util import TimeoutError as WaitTimeout

from artery_edge.edge.batch import classify_path, result_row, results_document
from artery_edge.edge.classifier import Classifier
from artery_edge.edge.dicom import is_dicom, looks_like_dicom
from artery_edge.edge.errors import ImageError, PredictionError
from artery_edge.edge.scan_batch import scan_document, scan_path, scan_row
from artery_edge.edge.scanner import FrameScanner
from artery_edge.edge.serve.live import LiveFeed
from artery_edge.edge.serve.options import is_loopback

COOKIE = "artery_edge_token"
COOKIE_DAYS = 30
MAX_STREAMS = 16  # open MJPEG + decision streams together; more get 503
# uploads whose bodies are being received at once; more get 503 (each holds up to --max-upload-mb):
# 60 stalled 10 MB uploads took the server from 414 to 951 MB before (issue 36)
MAX_UPLOADS = 4
SHOWN_ERROR_CHARS = 160  # of a parser's message about a client's header: never the whole header echoed
KEEPALIVE = timedelta(seconds=15)
QUEUE_SIZE = 256  # decisions waiting for a slow stream client; beyond it they are dropped for that client
NO_CAMERA = "no camera: serve was started without --camera or --video (uploads only)"
STOPPING = "the server is stopping; retry when it is back"
ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def api_error(status: int, message: str) -> tornado.web.HTTPError:
    """An HTTPError whose message (which may hold a '%') reaches the client as the JSON error."""
    return tornado.web.HTTPError(status, "%s", message)


def load_assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package: only these names are ever served."""
    folder = resources.files("artery_edge.edge.serve") / "static"
    return {name: ((folder / name).read_bytes(), kind) for name, kind in ASSETS.items()}


def classify_upload(classifier: Classifier, data: bytes, name: str) -> dict:
    """``infer --json``'s document for one uploaded image, or with a whole-frame model ``scan
    --json``'s (a DICOM file: one row per frame). The bytes go to a private temporary file and
    through the command's own path (``classify_path`` / ``scan_path``): its decoding, limits
    and errors, unchanged."""
    dicom = is_dicom(name) or looks_like_dicom(data)
    scanning = isinstance(classifier, FrameScanner)
    rows, notes = [], []
    with tempfile.NamedTemporaryFile(prefix="artery-edge-upload-", suffix=".dcm" if dicom else "") as spool:
        spool.write(data)
        spool.flush()
        path = Path(spool.name)
        try:
            for result in scan_path(classifier, path, None, None, None) if scanning else classify_path(classifier, path):
                result = replace(result, path=Path(name))
                rows.append(scan_row(result) if scanning else result_row(result, classifier.labels))
                notes += [note.replace(spool.name, name) for note in result.notes]
        except ImageError as exc:
            raise ImageError(str(exc).replace(spool.name, name)) from None
    return scan_document(classifier, None, rows, notes=notes) if scanning else \
        results_document(classifier, None, rows, 0, [], notes)


class Hub:
    """Fans the feed's events out to open streams; lives on the server's event loop."""

    def __init__(self) -> None:
        self.frames = tornado.locks.Condition()
        self.queues: set[tornado.queues.Queue] = set()
        self.open = 0

    def publish(self, kind: str, data: dict) -> None:
        if kind == "frame":
            self.frames.notify_all()
            return
        for queue in self.queues:
            if queue.qsize() < QUEUE_SIZE:
                queue.put_nowait((kind, data))

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.open >= MAX_STREAMS:
            raise api_error(503, f"too many open streams ({MAX_STREAMS}); close one and retry")
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


@dataclass
class ServerState:
    classifier: Classifier  # uploads (the live feed has its own: neither waits for the other)
    model_info: dict
    token: Optional[str]
    max_upload_bytes: int
    feed: Optional[LiveFeed] = None
    hub: Hub = field(default_factory=Hub)
    uploads: int = 0  # Predict bodies being received now (MAX_UPLOADS)
    stopping: bool = False  # SIGINT/SIGTERM came: requests still open get 503, not 500 (a model failure)
    assets: dict = field(default_factory=load_assets)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "artery-edge-predict"))


class Base(tornado.web.RequestHandler):
    """Headers, the host / origin / token checks and JSON errors shared by every route."""

    public = False  # served without the token: the page, its assets, /healthz

    def initialize(self, state: ServerState) -> None:
        self.state = state
        self.closed = False

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def prepare(self) -> None:
        if self.state.stopping:
            raise api_error(503, STOPPING)
        if self.state.token is None and not is_loopback(self.request.host_name):
            raise api_error(403, f"host {self.request.host_name!r} refused: without --token-file only "
                                 "localhost / 127.0.0.1 / [::1] are served")
        origin = self.request.headers.get("Origin")
        if self.request.method not in ("GET", "HEAD") and origin is not None \
                and urlsplit(origin).netloc.lower() != self.request.host.lower():
            raise api_error(403, "cross-origin request refused")
        # A browser names where a request comes from: another site's page (an <img> on /v1/stream holds a
        # stream slot; no Origin header is sent for it) is refused; curl and the like send none.
        if not self.public and self.request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise api_error(403, "cross-site request refused (Sec-Fetch-Site)")
        if not self.public and not self.authorized():
            raise api_error(401, "access token required: Authorization: Bearer <token from --token-file>")

    def authorized(self) -> bool:
        if self.state.token is None:
            return True
        scheme, _, credentials = self.request.headers.get("Authorization", "").strip().partition(" ")
        given = credentials.strip() if scheme.lower() == "bearer" else self.get_cookie(COOKIE, "")  # RFC 9110: any case
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.state.token.encode())

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        """A request cut off by the server's stop (its task cancelled) is answered 503, retry later:
        500 says the model failed."""
        if status_code == 500 and self.state.stopping:
            error = api_error(503, STOPPING)
            status_code, kwargs = 503, {"exc_info": (type(error), error, None)}
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message % exc.args if isinstance(exc, tornado.web.HTTPError) and exc.log_message \
            else self._reason
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="artery-edge"')
        if status_code == 405:
            self.set_header("Allow", ", ".join(
                m for m in ("GET", "HEAD", "POST") if getattr(type(self), m.lower()) is not getattr(Base, m.lower())))
        self.finish({"error": message, "status": status_code})

    def fail(self, status: int, message: str) -> None:
        """An error answer from a place that cannot raise into Tornado (``data_received``)."""
        error = api_error(status, message)
        self.send_error(status, exc_info=(type(error), error, None))

    def require_feed(self) -> LiveFeed:
        if self.state.feed is None:
            raise api_error(404, NO_CAMERA)
        return self.state.feed

    def on_connection_close(self) -> None:
        self.closed = True
        super().on_connection_close()  # a streamed body's reader is told, so its request ends here


class NotFound(Base):
    public = True

    def prepare(self) -> None:
        super().prepare()
        raise api_error(404, f"no such path: {self.request.path}")


class Asset(Base):
    public = True

    def get(self, name: str = "index.html") -> None:
        if name not in self.state.assets:
            raise api_error(404, f"no such file: {name}")
        body, kind = self.state.assets[name]
        self.set_header("Content-Type", kind)
        self.finish(body)


class Health(Base):
    public = True

    def get(self) -> None:
        feed = self.state.feed
        self.finish({"status": "ok", "camera": feed.status()["state"] if feed else "none"})

    def head(self) -> None:  # what uptime monitors ask: the status line and headers alone
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish()


class Session(Base):
    def post(self) -> None:
        """The token was right (``prepare``): hand the page an HttpOnly cookie, so it asks once."""
        self.set_cookie(COOKIE, self.state.token or "", httponly=True, samesite="Strict", expires_days=COOKIE_DAYS)
        self.set_status(204)
        self.finish()


class Model(Base):
    def get(self) -> None:
        self.finish(self.state.model_info)


class Status(Base):
    def get(self) -> None:
        feed = self.state.feed
        self.finish(feed.status() if feed else {"state": "none", "message": NO_CAMERA, "recent": [], "chart": []})


@tornado.web.stream_request_body
class Predict(Base):
    """An image as a form field ``image`` (multipart) or as the raw body; at most ``--max-upload-mb``."""

    def prepare(self) -> None:
        super().prepare()
        self.body = bytearray()
        self.limit = self.state.max_upload_bytes
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise api_error(413, f"upload of {int(declared):,} bytes exceeds the {self.limit:,}-byte limit")
        if self.state.uploads >= MAX_UPLOADS:
            raise api_error(503, f"{MAX_UPLOADS} uploads are being received already; retry in a moment")
        self.state.uploads += 1
        self.receiving = True

    def release(self) -> None:
        """This upload's slot and body given back, once, however the request ended."""
        if getattr(self, "receiving", False):
            self.receiving = False
            self.state.uploads -= 1
        self.body = bytearray()

    def on_finish(self) -> None:
        self.release()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.release()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self.body += chunk
        if len(self.body) > self.limit:  # a chunked upload without a Content-Length
            self.body = bytearray()
            self.fail(413, f"upload exceeds the {self.limit:,}-byte limit")

    async def post(self) -> None:
        if self._finished:
            return
        data, name = self.upload()
        self.release()  # the bytes are in ``data`` now: the slot serves the next upload
        try:
            document = await tornado.ioloop.IOLoop.current().run_in_executor(
                self.state.executor, classify_upload, self.state.classifier, data, name)
        except ImageError as exc:
            raise api_error(400, str(exc)) from None
        except PredictionError as exc:
            raise api_error(500, str(exc)) from None
        self.finish(document)

    def upload(self) -> tuple[bytes, str]:
        kind = self.request.headers.get("Content-Type", "")
        if not kind.lower().startswith("multipart/form-data"):
            return bytes(self.body), "upload"
        files: dict = {}
        try:
            parse_body_arguments(kind, bytes(self.body), {}, files, self.request.headers)
        except HTTPInputError as exc:
            raise api_error(400, f"malformed form upload ({str(exc)[:SHOWN_ERROR_CHARS]})") from None
        if not files.get("image"):
            raise api_error(400, 'no file in the form field "image" (curl -F image=@patch.png ...)')
        part = files["image"][0]
        return part.body, Path(part.filename or "upload").name[:200] or "upload"


class Stream(Base):
    """MJPEG (``multipart/x-mixed-replace``): a browser's <img>, VLC or ffplay shows it live."""

    async def get(self) -> None:
        feed = self.require_feed()
        with self.state.hub.slot():
            self.set_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            shown = None
            while not self.closed:
                jpeg = feed.jpeg()
                if jpeg is not None and jpeg is not shown:
                    self.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                               % (len(jpeg), jpeg))
                    shown = jpeg
                    try:
                        await self.flush()
                    except StreamClosedError:
                        return
                await self.state.hub.frames.wait(timeout=KEEPALIVE)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.state.hub.frames.notify_all()


class Decisions(Base):
    """Server-sent events: ``status`` when the camera's state changes, ``decision`` per frame
    (``infer --json``'s line: frame, time, label, probabilities, fps; a whole-frame model's has
    lesions, peak and frame_size in place of label and probabilities)."""

    async def get(self) -> None:
        feed = self.require_feed()
        with self.state.hub.slot():
            self.queue: tornado.queues.Queue = tornado.queues.Queue()
            self.state.hub.queues.add(self.queue)
            try:
                await self.events(feed)
            finally:
                self.state.hub.queues.discard(self.queue)

    async def events(self, feed: LiveFeed) -> None:
        self.set_header("Content-Type", "text/event-stream")
        status = {k: v for k, v in feed.status().items() if k not in ("recent", "chart")}
        self.write(f"event: status\ndata: {json.dumps(status)}\n\n")
        while not self.closed:
            try:
                await self.flush()
                kind, data = await self.queue.get(timeout=KEEPALIVE)
            except StreamClosedError:
                return
            except WaitTimeout:
                self.write(": keep-alive\n\n")
                continue
            if kind is not None:
                self.write(f"event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n")

    def on_connection_close(self) -> None:
        super().on_connection_close()
        queue = getattr(self, "queue", None)
        if queue is not None:
            queue.put_nowait((None, None))


def make_app(state: ServerState) -> tornado.web.Application:
    routes = [
        (r"/", Asset), (r"/static/([^/]+)", Asset), (r"/healthz", Health),
        (r"/v1/session", Session), (r"/v1/model", Model), (r"/v1/status", Status), (r"/v1/predict", Predict),
        (r"/v1/stream", Stream), (r"/v1/decisions", Decisions),
    ]
    return tornado.web.Application([(path, handler, {"state": state}) for path, handler in routes],
                                   default_handler_class=NotFound, default_handler_args={"state": state},
                                   compress_response=False)
