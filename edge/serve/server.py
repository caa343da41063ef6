"""Start ``serve``: load the model, start the live feed, listen, and stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Callable

from artery_edge.edge.bench import open_model
from artery_edge.edge.classifier import Classifier
from artery_edge.edge.errors import EdgeError
from artery_edge.edge.metadata import sha256_of_file
from artery_edge.edge.serve.options import ServeOptions, token_file_warning
from artery_edge.edge.text import terminal

SERVE_HINT = 'the serve extra is not installed: pip install "artery-edge[serve]"'
TIMEOUT_S = 60  # a client that sends no request, or no body, for this long is disconnected


def import_tornado():
    try:
        import tornado
    except ImportError:
        raise EdgeError(SERVE_HINT) from None
    return tornado


def describe_model(classifier: Classifier) -> dict:
    """``GET /v1/model``: what ``inspect --json`` says of the model, its positive class, SHA-256
    and task (``classify``, or ``map`` for a whole-frame model: the page shows lesions then)."""
    from artery_edge.edge.inspect import summarize

    path = classifier.model_path
    task = classifier.metadata.task if classifier.metadata else "classify"
    return {**summarize(path), "positive_label": classifier.positive_label, "sha256": sha256_of_file(path),
            "task": task}


def serve(options: ServeOptions, announce: Callable[[str], None]) -> None:
    """Serve the page and the API until SIGINT or SIGTERM. ``announce`` gets the address line."""
    token = options.token()  # refuses a non-loopback address without a token before anything loads
    readable = token_file_warning(options.token_file) if options.token_file is not None else None
    if readable:
        announce(readable)
    for note in options.notes:
        announce(f"note: {note}")
    import_tornado()
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("artery_edge.serve").setLevel(logging.INFO)
    from artery_edge.edge.serve.app import ServerState

    classifier = open_model(options.model, None, options.threads)  # a patch classifier or a whole-frame model
    if classifier.warning:  # a modified packaged reference run anyway: said here and in every answer
        announce(classifier.warning)
    state = ServerState(classifier, describe_model(classifier), token, options.max_upload_bytes)
    try:
        asyncio.run(run(options, state, announce))
    finally:
        state.executor.shutdown(wait=False, cancel_futures=True)


class EscapingFormatter(logging.Formatter):
    """Log messages as terminals show text (``edge.text.terminal``): a client's CR, LF or ESC, in
    an uploaded file's name, a path or a header, cannot forge a log line or drive the operator's
    terminal. Tracebacks, the server's own, keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = terminal(record.message)
        return super().formatMessage(record)


def bind(options: ServeOptions) -> list:
    """The listening sockets; an address that cannot be had (no such host, port taken or
    privileged) is one error line naming it, not a bare "address already in use"."""
    from tornado.netutil import bind_sockets

    try:
        return bind_sockets(options.port, options.host)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise EdgeError(f"cannot listen on --host {options.host} --port {options.port}: {reason}") from None


async def run(options: ServeOptions, state, announce: Callable[[str], None]) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop

    from artery_edge.edge.serve.app import make_app
    from artery_edge.edge.serve.live import LiveFeed, source_opener

    loop = IOLoop.current()
    if options.source is not None:
        state.feed = LiveFeed(open_model(options.model, None, options.threads), source_opener(options.source),
                              lambda kind, data: loop.add_callback(state.hub.publish, kind, data), crop=options.crop)
    sockets = bind(options)
    server = HTTPServer(make_app(state), max_body_size=2 * options.max_upload_bytes,
                        idle_connection_timeout=TIMEOUT_S, body_timeout=TIMEOUT_S)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    if state.feed is not None:
        state.feed.start()
    host = f"[{options.host}]" if ":" in options.host else options.host
    announce(f"serving http://{host}:{sockets[0].getsockname()[1]}/ ("
             f"{'token required' if state.token else 'this machine only, no token'}; "
             f"source: {options.source if options.source is not None else 'none, uploads only'}; Ctrl-C stops)")
    try:
        await stop.wait()
    finally:
        state.stopping = True  # what is still open is answered 503 as it ends (edge.serve.app)
        server.stop()
        if state.feed is not None:
            state.feed.stop()
