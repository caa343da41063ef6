"""Pick a TFLite interpreter: ai_edge_litert, else tflite_runtime, else tensorflow.lite.

TensorFlow is only the last resort and only imported when nothing lighter is there, so a
device with ``artery-edge[edge]`` never loads it.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from artery_edge.edge.errors import ModelError, OptionError

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
MAX_THREADS = 256


def check_threads(threads: Optional[int]) -> None:
    """``--threads`` of every command that runs a model: None (the runtime's default) or 1..256."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise OptionError(f"--threads must lie between 1 and {MAX_THREADS}")


def _interpreter_class(backend: str) -> Callable[..., Any]:
    if backend == "ai_edge_litert":
        return importlib.import_module("ai_edge_litert.interpreter").Interpreter
    if backend == "tflite_runtime":
        return importlib.import_module("tflite_runtime.interpreter").Interpreter
    if backend == "tensorflow":
        return importlib.import_module("tensorflow").lite.Interpreter
    raise ModelError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def find_backend(preferred: Optional[str] = None) -> tuple[str, Callable[..., Any]]:
    """The first importable backend (or the one asked for) and its Interpreter class."""
    candidates = (preferred,) if preferred else BACKENDS
    errors = []
    for backend in candidates:
        try:
            return backend, _interpreter_class(backend)
        except Exception as exc:  # a broken wheel (e.g. NumPy ABI) counts as missing
            errors.append(f"{backend}: {type(exc).__name__}")
    raise ModelError(
        'no TFLite interpreter available (' + "; ".join(errors) + '): pip install "artery-edge[edge]"'
    )


def load_interpreter(
    model_path: Path, content: bytes, threads: Optional[int] = None, backend: Optional[str] = None
) -> tuple[Any, str]:
    """An interpreter over ``content`` (the bytes of ``model_path``, already read once for the
    metadata; tensors not yet allocated) and its backend's name."""
    name, interpreter_class = find_backend(backend)
    with load_errors(model_path):
        interpreter = interpreter_class(model_content=content, num_threads=threads)
    return interpreter, name


@contextmanager
def load_errors(model_path: Path) -> Iterator[None]:
    """Interpreter failures (bad flatbuffer, unsupported op, bad shapes) as one-line ModelErrors."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{model_path}: cannot load TFLite model ({first_line})") from None
