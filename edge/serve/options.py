"""What ``artery-edge serve`` is told, checked before anything starts: which model and frame
source, where to listen, and the access token that any address but loopback requires.

No web library here: the checks run (and fail with one line) before the serving library loads.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from artery_edge.edge.dicom import is_dicom, open_dicom
from artery_edge.edge.errors import EdgeError, OptionError
from artery_edge.edge.stream import CROPS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 10.0
MIN_TOKEN_LENGTH = 16
# Characters a token may hold: it travels in an Authorization header and a cookie unchanged.
TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
TOKEN_HINT = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > token && chmod 600 token"

Source = Union[int, str, Path]  # a camera index, "pi" (the Pi camera module) or a video file


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace dropped), refused when short or unprintable."""
    try:
        token = Path(path).read_text(encoding="utf-8-sig").strip()  # Notepad's BOM is not part of it
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise EdgeError(f"--token-file {path}: cannot read it ({reason.lower()})") from None
    if len(token) < MIN_TOKEN_LENGTH or not TOKEN_CHARS.fullmatch(token):
        raise EdgeError(f"--token-file {path}: the token must be at least {MIN_TOKEN_LENGTH} characters of "
                        f"A-Z a-z 0-9 . _ ~ + / = - on one line; {TOKEN_HINT}")
    return token


def token_file_warning(path: Path) -> Optional[str]:
    """A warning when other users of the machine may read the token file (group or others may):
    the token is the one key to the API, and ``TOKEN_HINT`` makes it private."""
    mode = Path(path).stat().st_mode
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    return (f"warning: --token-file {path} can be read by other users of this machine (mode "
            f"{stat.S_IMODE(mode):03o}): chmod 600 {path}")


@dataclass
class ServeOptions:
    """Everything the server needs; :meth:`token` checks that the address and token go together."""

    model: Path
    source: Optional[Source] = None  # None: no camera, the page offers uploads only
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token_file: Optional[Path] = None
    threads: Optional[int] = None
    crop: str = "center"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    notes: tuple[str, ...] = field(default=(), init=False)  # how a DICOM cine source is shown and played

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise OptionError(f"--port must lie between 0 and 65535 (0: any free port), not {self.port}")
        if not 0 < self.max_upload_mb <= 1024:
            raise OptionError(f"--max-upload-mb must lie in (0, 1024], not {self.max_upload_mb}")
        if self.crop not in CROPS:
            raise OptionError(f"--crop must be one of {', '.join(CROPS)}, not {self.crop!r}")
        if isinstance(self.source, Path) and not self.source.is_file():
            raise EdgeError(f"--video {self.source}: no such file")
        if isinstance(self.source, Path) and is_dicom(self.source):  # a bad cine: one line, before listening
            self.notes = open_dicom(self.source).playback_notes

    @classmethod
    def checked(cls, model: Optional[Path], camera: Optional[str], video: Optional[Path], host: str, port: int,
                token_file: Optional[Path], threads: Optional[int], crop: str, max_upload_mb: float) -> "ServeOptions":
        """From the command line: one frame source at most and --threads in range before the packaged
        reference model stands in for a missing --model (said on stderr); the rest in ``__post_init__``."""
        from artery_edge.edge.camera import parse_camera
        from artery_edge.edge.command_options import model_or_reference
        from artery_edge.edge.runtime import check_threads

        if camera is not None and video is not None:
            raise OptionError("give at most one of --camera or --video")
        source = video if camera is None else parse_camera(camera)
        check_threads(threads)
        return cls(model_or_reference(model), source, host, port, token_file, threads, crop, max_upload_mb)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    def token(self) -> Optional[str]:
        """The access token, or None on loopback without one; refuses any other address without one."""
        if self.token_file is not None:
            return read_token(self.token_file)
        if not is_loopback(self.host):
            raise OptionError(f"--host {self.host} lets other machines in: it needs --token-file "
                              f"(clients send the token); {TOKEN_HINT}")
        return None
