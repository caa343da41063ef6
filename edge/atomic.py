"""Files and folders that appear whole or not at all.

Everything is written under a temporary name beside its target (same file system) and moved
into place in one step, so a full disk, an exception or Ctrl-C leaves no truncated file and
no half-filled folder under the real name. Temporary names carry the writer's process id
(``.<name>.<pid>.tmp``): one left by a process killed with -9 is recognisable, and
:func:`remove_stale` clears it. Standard library only (the device package uses it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar, Union

T = TypeVar("T")
PathLike = Union[str, os.PathLike]
MAX_SUFFIX = 1000  # base, base-2 ... base-999: then the folder of a new one is refused


def temp_name(path: PathLike) -> Path:
    """``dir/.name.<pid>.tmp``: hidden, beside ``path``, and this process's own."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; when the block ends without error, move it to ``path``.

    ``overwrite=False`` moves with ``os.link``, which fails (FileExistsError) if ``path`` exists,
    even one another process created meanwhile: no check-then-write race. On any error the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    temp = temp_name(path)
    try:
        yield temp
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise FileExistsError(17, "file exists (refusing to overwrite it)", str(path)) from None
    except OSError as exc:
        if exc.filename is not None and os.fspath(exc.filename) == os.fspath(temp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None  # name the file asked for, not ours
        raise
    finally:
        temp.unlink(missing_ok=True)


def write_bytes(path: PathLike, data: bytes, overwrite: bool = True) -> None:
    """``Path.write_bytes``, atomically (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite) as temp:
        temp.write_bytes(data)


def write_text(path: PathLike, text: str, overwrite: bool = True) -> None:
    """``Path.write_text`` (UTF-8), atomically (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite) as temp:
        temp.write_text(text, encoding="utf-8")


def check_can_create(path: Optional[PathLike]) -> None:
    """Before any work: ``path`` (None: the default place, nothing to check) can be created later (as a file or a folder), that is the nearest
    of its parents that exists is a folder this process may write in. Raises the OSError that
    creating it would raise, naming ``path`` (``not a directory``, ``permission denied``), so an
    ``--out`` under a regular file fails at once, not after minutes of work with a misleading
    ``file exists``."""
    if path is None:
        return
    path = Path(path).absolute()
    parent = next(p for p in path.parents if p.exists())  # the root always exists
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))  # as open() would say
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "permission denied", str(path))


@contextlib.contextmanager
def _temp_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target`` (same file system, so one rename moves
    it into place), removed when the block ends however it ends: a folder not renamed by then
    never stays behind under any name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(target)
    shutil.rmtree(temp, ignore_errors=True)  # this pid's own leftover (pids are reused)
    temp.mkdir()
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def new_folder(base: PathLike, fill: Callable[[Path], T]) -> tuple[Path, T]:
    """Fill a temporary folder, then rename it to ``base`` (or ``base-2``, ``base-3``... when taken:
    earlier ones are kept). Returns the folder's final path and what ``fill`` returned.

    ``fill(folder)`` writes into the temporary folder; if it raises, the folder is removed and
    nothing appears under ``base``'s name.
    """
    base = Path(base)
    check_can_create(base)
    with _temp_folder(base) as temp:
        result = fill(temp)
        for attempt in range(1, MAX_SUFFIX):
            candidate = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            if candidate.exists() or candidate.is_symlink():
                continue  # rename() would replace an empty folder: never take an existing name
            try:
                os.rename(temp, candidate)
            except OSError:  # created meanwhile (ENOTEMPTY / EEXIST): try the next name
                if not temp.exists():
                    raise
                continue
            return candidate, result
        raise FileExistsError(17, f"no free name among {base.name}, {base.name}-2 ... -{MAX_SUFFIX - 1}", str(base))


def fill_folder(path: PathLike, fill: Callable[[Path], T]) -> T:
    """Fill a temporary folder, then rename it to ``path``, which must be absent or an empty
    folder (``rename`` replaces an empty one, and refuses one that filled meanwhile). An
    exception or Ctrl-C in ``fill`` leaves ``path`` as it was: no half-written folder."""
    path = Path(path)
    check_can_create(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(errno.EEXIST, "file exists (not a folder)", str(path))
    with _temp_folder(path) as temp:
        result = fill(temp)
        os.rename(temp, path)
        return result


def remove_stale(folder: PathLike, name: str) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` files or folders in ``folder`` whose process is gone (killed with -9)."""
    removed = []
    prefix = f".{name}."
    for temp in Path(folder).glob(f".{name}.*.tmp"):
        pid = temp.name[len(prefix):-len(".tmp")]
        if pid.isdigit() and not process_alive(int(pid)):
            if temp.is_dir() and not temp.is_symlink():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:  # e.g. Windows: an id it cannot signal
        return False
    return True
