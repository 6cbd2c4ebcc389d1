"""One writer per output: an advisory lock beside every folder or file textshift writes.

Two commands writing the same output at once (two ``train -o m``, two ``predict -o p.csv``, two ``compare -o
cmp``) would otherwise mix their results, or one would silently replace the other's. :func:`output_lock` holds
an exclusive ``flock`` on a hidden ``.NAME.lock`` file next to the output for the whole command; a second
writer fails at once with :class:`~textshift.errors.OutputBusyError`, naming the process that holds it. The
operating system drops the lock when its process ends, however it ends, so a killed run never leaves a stale
lock behind (the file may stay; it means nothing unless a live process holds it).

Holding the lock also proves that no other textshift process is writing that output, so leftovers of a killed
save (hidden ``.NAME.tmp-*`` siblings) are removed when it is taken.

The lock is re-entrant within a process (a command that locks its output and then calls
:meth:`~textshift.model.Classifier.save` on it takes it once). Under ``accelerate launch``/``torchrun`` only the
process of rank 0 writes, so only it locks. Where ``fcntl`` does not exist (Windows), nothing is locked.

>>> from textshift.locks import output_lock
>>> with output_lock("my-model"):
...     pass  # train and save my-model; another process that tries the same fails with OutputBusyError
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from textshift.errors import OutputBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_held: dict[Path, int] = {}  # lock file -> how many nested output_lock calls of this process hold it


def lock_path(target: str | os.PathLike) -> Path:
    """The hidden lock file of an output: ``.NAME.lock`` in the same folder."""
    target = Path(os.path.abspath(Path(target).expanduser()))
    return target.with_name(f".{target.name}.lock")


def _writer_rank() -> int:
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def output_lock(target: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive write lock of ``target`` (a folder or file, existing or not) for the ``with`` block.

    Raises :class:`~textshift.errors.OutputBusyError` at once if another process holds it. Yields the lock file's
    path. The output's parent folder is created if needed.
    """
    lock = lock_path(target)
    if fcntl is None or _writer_rank() != 0:
        yield lock
        return
    if lock in _held:
        _held[lock] += 1
        try:
            yield lock
        finally:
            _held[lock] -= 1
        return
    created = _make_parents(lock.parent)
    try:
        handle = _acquire(lock, Path(target)) if created is not None else None
    except BaseException:
        _remove_if_empty(created or [])
        raise
    if handle is None:  # nothing can be written there: the write itself reports why, in its own words
        _remove_if_empty(created or [])
        yield lock
        return
    _held[lock] = 1
    try:
        remove_stale_temporaries(Path(target))
        yield lock
    finally:
        del _held[lock]
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still locked: a process waiting on this file re-checks and uses a new one
        handle.close()
        _remove_if_empty(created)  # a command that failed early leaves no empty folders behind


def writes(parameter: str) -> Callable:
    """Decorator: run the function under :func:`output_lock` of its argument ``parameter`` (the output path).

    The wrapped function keeps its signature, so Typer commands and library functions can both use it.
    """

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            target = signature.bind_partial(*args, **kwargs).arguments.get(parameter)
            if not isinstance(target, (str, os.PathLike)) or not str(target).strip():
                return func(*args, **kwargs)  # the function reports a missing or bad path itself
            with output_lock(target):
                return func(*args, **kwargs)

        return wrapper

    return decorate


def _make_parents(folder: Path) -> list[Path] | None:
    """Create ``folder`` and its missing parents; return those created, deepest first (None if impossible)."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        _remove_if_empty(missing)
        return None
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _acquire(lock: Path, target: Path):
    while True:
        try:
            handle = open(lock, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        except OSError:
            return None  # a read-only or odd location: no lock, and the write fails with its own error
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputBusyError(f"{target} is being written by another textshift process (pid {holder}); "
                                  "expected one writer per output. Wait for it to finish, or choose another "
                                  "output path") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed this file as we opened it: lock the new one
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete hidden ``.NAME.tmp-*`` siblings of ``target`` (a save killed midway); only safe under its lock."""
    target = Path(os.path.abspath(target))
    removed = []
    if not target.parent.is_dir():
        return removed
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                leftover.unlink()
        removed.append(leftover)
    return removed
