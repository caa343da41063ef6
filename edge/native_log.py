"""Keep native libraries' start-up chatter (TensorFlow's absl lines, LiteRT's delegate INFO line)
off the terminal: it is written straight to the stderr file descriptor, past every Python or
environment log setting. ``ARTERY_EDGE_VERBOSE=1`` (the CLI's ``--verbose``) shows it."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

VERBOSE_ENV = "ARTERY_EDGE_VERBOSE"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Capture file descriptor 2 for the block; if the block fails, replay what was captured."""
    if os.environ.get(VERBOSE_ENV):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
