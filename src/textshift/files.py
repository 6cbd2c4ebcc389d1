"""Crash-safe file writes: every file and folder textshift writes appears under its real name only once complete.

A write goes to a hidden sibling (``.NAME.tmp-*``), is made durable (fsync), and is then renamed over the real
name in one step, so a crash at any moment leaves either the previous content or the new one, never half of
either. Hidden leftovers of a killed write are removed by :mod:`textshift.locks` the next time the path is
written. This is the only module that renames files into place; every other module goes through it.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> from textshift.files import atomic_write
>>> path = Path(tempfile.mkdtemp()) / "notes.txt"
>>> with atomic_write(path) as handle:
...     _ = handle.write("complete or absent\\n")
>>> path.read_text()
'complete or absent\\n'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

BACKUP_INFIX = ".old-"  # a folder replaced by a two-rename swap waits as .NAME.old-* until the new one is in place


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A unique hidden name beside ``path`` (``.NAME.tmp-PID-XXXXXXXX``) to write to before renaming into place.

    Example
    -------
    >>> from textshift.files import temporary_sibling
    >>> temporary_sibling("out/report.html").name.startswith(".report.html.tmp-")
    True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success make it durable and rename it over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. Its folder must exist. An existing file is replaced only once the new content is
        complete and on disk.
    mode : {"w", "wb"}, default "w"
        Text or binary.
    encoding, newline : str, optional
        As for :func:`open` (text mode only).

    Yields
    ------
    file object
        The open temporary file. If the block raises, the temporary file is removed, ``path`` is left as it
        was, and the exception propagates.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from textshift.files import atomic_write
    >>> path = Path(tempfile.mkdtemp()) / "weights.bin"
    >>> with atomic_write(path, "wb") as handle:
    ...     _ = handle.write(b"\\x00\\x01")
    >>> path.read_bytes(), [p.name for p in path.parent.iterdir()]
    (b'\\x00\\x01', ['weights.bin'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        # "x": never write through a file or link that appeared under the temporary name.
        with open(tmp, mode.replace("w", "x"), encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def replace_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make the complete file ``tmp`` durable and rename it over ``path`` in one step.

    For writers that produce the temporary file themselves (a stream appended chunk by chunk, a database);
    ``tmp`` must be on the same file system as ``path``, i.e. a sibling. Others use :func:`atomic_write`.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from textshift.files import replace_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".rows.csv.partial").write_text("row\\n0\\n")
    >>> replace_file(folder / ".rows.csv.partial", folder / "rows.csv")
    >>> [p.name for p in folder.iterdir()]
    ['rows.csv']
    """
    tmp, path = Path(tmp), Path(path)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def swap_folder(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make the complete folder ``staging`` (a sibling of ``target``) appear as ``target`` in one step.

    ``staging``'s files are made durable first. A folder already at ``target`` is replaced: exchanged with
    ``staging`` in one atomic step where the system allows it (Linux ``renameat2``), else moved aside to
    ``.NAME.old-*``, ``staging`` renamed into place and the old folder deleted. If that second rename fails,
    the old folder is put back before the error propagates; if the process dies between the two renames,
    :func:`recover_interrupted_swap` puts it back. A crash at any moment leaves either folder whole.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from textshift.files import swap_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "report").mkdir(); _ = (root / "report" / "v").write_text("1")
    >>> (root / ".report.tmp-1").mkdir(); _ = (root / ".report.tmp-1" / "v").write_text("2")
    >>> swap_folder(root / ".report.tmp-1", root / "report")
    >>> (root / "report" / "v").read_text(), [p.name for p in root.iterdir()]
    ('2', ['report'])
    """
    staging, target = Path(staging), Path(target)
    fsync_files(staging)
    if target.exists() and _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # staging now holds the previous folder
    elif target.exists():
        backup = target.parent / f".{target.name}{BACKUP_INFIX}{uuid.uuid4().hex[:8]}"
        os.replace(target, backup)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(backup, target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, target)
    fsync_dir(target.parent)


def recover_interrupted_swap(target: str | os.PathLike, *,
                             accept: Callable[[Path], bool] = lambda folder: True) -> bool:
    """Put back the previous folder when a :func:`swap_folder` died between its two renames.

    Only platforms without an atomic exchange can leave that state: no ``target``, and the previous folder as
    ``.NAME.old-*``. The newest such folder that ``accept`` approves is renamed back. Returns True when a
    folder was restored.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from textshift.files import recover_interrupted_swap
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / ".report.old-1234abcd").mkdir()
    >>> recover_interrupted_swap(root / "report"), (root / "report").is_dir()
    (True, True)
    """
    target = Path(target)
    if target.exists():
        return False
    backups = sorted(target.parent.glob(f".{target.name}{BACKUP_INFIX}*"), key=lambda p: p.stat().st_mtime)
    backups = [b for b in backups if accept(b)]
    if not backups:
        return False
    os.replace(backups[-1], target)
    return True


def remove_folder(folder: str | os.PathLike, *, aside: str | os.PathLike) -> None:
    """Delete ``folder`` after renaming it to ``aside`` in one step, so a kill during a long deletion leaves no
    half-deleted folder under the real name (``aside`` should be a hidden name that a later write cleans up).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from textshift.files import remove_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "old").mkdir()
    >>> remove_folder(root / "old", aside=root / ".old.tmp-1")
    >>> list(root.iterdir())
    []
    """
    os.replace(folder, aside)
    shutil.rmtree(aside)


def fsync_files(folder: str | os.PathLike) -> None:
    """Flush the files directly inside ``folder`` to disk."""
    for item in Path(folder).iterdir():
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush ``folder``'s entries (names created, renamed or removed in it) to disk, where the platform can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported, so
    the caller falls back to two renames."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
