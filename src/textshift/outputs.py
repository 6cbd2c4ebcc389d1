"""Where textshift may write: one check of every output path, made before any long work.

Every command that writes calls :func:`check_output` on each output before it reads data, loads a model or
trains, so a path that cannot be used fails within seconds, with one line, instead of after the run:

* the path must be of the right kind: a folder where a folder is written, a file where a file is;
* a folder output may not be the current folder or one that contains it (it could not be swapped, and replacing
  it would pull the folder from under the user's shell);
* an input (the data, a source model) is never an output, nor inside a folder output that would be replaced;
* an existing output is replaced (with ``overwrite``) or reused only when it is what that command writes — a
  textshift model folder, an inspect report, a comparison folder, a predictions CSV, ... — never a folder or
  file of the user's: those are refused whatever ``overwrite`` says;
* its folder must exist or be creatable, and be writable: a temporary file is actually created there (and
  removed), which also catches read-only mounts and immutable folders that permission bits do not show.

>>> from textshift.outputs import MODEL, check_output
>>> check_output("my-model", MODEL)  # raises a TextshiftError with one line if my-model cannot be written
PosixPath('my-model')
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from textshift.errors import ConfigError, ForeignOutputError, OutputExistsError, OutputNotWritableError

MODEL_FILES = ("textshift.json", "config.json")
REPORT_MARKERS = ("summary.json", "items.csv")
COMPARISON_MARKER = "runs.sqlite"
DEMO_PARTS = ("news-model", "compare")


def is_model_folder(path: str | os.PathLike) -> bool:
    """True for a folder saved by textshift (``textshift.json`` and ``config.json``)."""
    return all((Path(path) / name).is_file() for name in MODEL_FILES)


def is_report_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by ``textshift inspect -o``."""
    return all((Path(path) / name).is_file() for name in REPORT_MARKERS)


def is_comparison_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by ``textshift compare -o`` (it holds the runs)."""
    return (Path(path) / COMPARISON_MARKER).is_file()


def is_demo_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by ``textshift demo -o`` (its news model or comparison)."""
    return any((Path(path) / name).is_dir() for name in DEMO_PARTS)


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def is_predictions_file(path: str | os.PathLike) -> bool:
    """True for a CSV written by ``textshift predict`` (header ``row,text,...,label,probability``)."""
    header = _head(Path(path)).split(b"\n", 1)[0].rstrip(b"\r").split(b",")
    return header[:1] == [b"row"] and b"label" in header and b"probability" in header


def is_confusion_png(path: str | os.PathLike) -> bool:
    """True for a PNG image drawn by textshift's confusion-matrix plot (matplotlib signs what it writes)."""
    head = _head(Path(path))
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Matplotlib" in head


def is_sqlite_file(path: str | os.PathLike) -> bool:
    """True for an SQLite database (an edit log or run store reopened, never replaced)."""
    return _head(Path(path), 16) == b"SQLite format 3\x00"


@dataclass(frozen=True)
class OutputKind:
    """What a command writes at its output path.

    Attributes
    ----------
    what : str
        How the error messages name it ("a textshift model folder").
    folder : bool
        A folder (True) or a file (False).
    owns : callable
        Whether an existing path at the output is one this kind of command wrote (and may replace or reuse).
    reused : bool
        An existing output of this kind is written into again (a comparison resumes) rather than replaced, so it
        needs no ``overwrite``.
    """

    what: str
    folder: bool
    owns: Callable[[Path], bool]
    reused: bool = False


MODEL = OutputKind("a textshift model folder", True, is_model_folder)
REPORT = OutputKind("an inspect report", True, is_report_folder)
COMPARISON = OutputKind("a comparison folder", True, is_comparison_folder, reused=True)
DEMO = OutputKind("a demo folder", True, is_demo_folder, reused=True)
PREDICTIONS = OutputKind("a predictions CSV", False, is_predictions_file)
CONFUSION_PNG = OutputKind("a confusion-matrix PNG", False, is_confusion_png)
EDIT_LOG = OutputKind("a review edit log", False, is_sqlite_file, reused=True)


def check_output(path: str | os.PathLike, kind: OutputKind, *, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike | None] = (), option: str = "-o") -> Path:
    """Fail at once, with one line, if ``kind`` cannot be written at ``path``; return the path, ``~`` expanded.

    Parameters
    ----------
    path : path
        The output, existing or not.
    kind : OutputKind
        What is written there (:data:`MODEL`, :data:`REPORT`, :data:`COMPARISON`, :data:`DEMO`,
        :data:`PREDICTIONS`, :data:`CONFUSION_PNG`, :data:`EDIT_LOG`, or one of the caller's).
    overwrite : bool
        Whether an existing output of this kind may be replaced. Never allows replacing anything else.
    inputs : paths
        What the command reads; none may be the output, or lie inside a folder output that would be replaced.
    option : str
        How the user names the output (``-o``, ``--confusion``), for the "how to fix" part of messages.

    Raises
    ------
    ForeignOutputError
        The path is an input, the current folder or one above it, a file where a folder goes (or the other way
        round), or holds something textshift did not write.
    OutputExistsError
        Without ``overwrite``: the path holds an earlier output of this kind.
    OutputNotWritableError
        Nothing can be created where the output goes (permissions, a read-only file system).
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected a path for {kind.what}; got {path!r:.60}. Pass {option} with a path")
    target = Path(text).expanduser()
    absolute = Path(os.path.abspath(target))
    _check_kind(target, kind, option)
    if kind.folder:
        _check_not_cwd(target, absolute, option)
    _check_inputs(target, absolute, kind, inputs, option)
    new = "a new folder" if kind.folder else "a new file"
    if target.exists() and (not kind.folder or any(target.iterdir())):
        if not kind.owns(target):
            raise ForeignOutputError(f"{target} exists and is not {kind.what}; expected {new} (textshift "
                                     f"replaces only what it wrote). Choose another {option} path")
        if not kind.reused and not overwrite:
            raise OutputExistsError(f"{target} already exists ({kind.what}); expected {new}. Pass "
                                    f"--overwrite to replace it, or choose another {option} path")
    check_writable(absolute.parent, option=option)
    if kind.folder and target.is_dir():
        check_writable(absolute, option=option)
    return target


def check_writable(folder: str | os.PathLike, *, option: str = "-o") -> None:
    """Fail unless files can be created in ``folder``, or in the nearest existing folder above it (where the
    missing ones will be made). A temporary file is created and removed: only that proves it."""
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    existing = next(candidate for candidate in (folder, *folder.parents) if candidate.exists())
    if not existing.is_dir():
        raise OutputExistsError(f"cannot create {folder}: {existing} is a file; expected a folder there. Choose "
                                f"another {option} path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".textshift-probe-", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputNotWritableError(f"cannot write in {existing} ({reason}); expected a folder you can write "
                                     f"to. Choose another {option} path or fix its permissions") from None
    os.close(handle)
    os.unlink(probe)


def _check_kind(target: Path, kind: OutputKind, option: str) -> None:
    if kind.folder and target.exists() and not target.is_dir():
        raise ForeignOutputError(f"{target} is a file; expected a folder for {kind.what}. Choose another {option} "
                                "path")
    if not kind.folder and target.is_dir():
        raise ForeignOutputError(f"{target} is a folder; expected a file path for {kind.what}. Choose another "
                                f"{option} path")


def _check_not_cwd(target: Path, absolute: Path, option: str) -> None:
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was removed: nothing to protect
        return
    resolved = absolute.resolve()
    if resolved == cwd or resolved in cwd.parents:
        where = "the current folder" if resolved == cwd else f"a folder that contains the current folder {cwd}"
        raise ForeignOutputError(f"{target} is {where}; expected a folder of its own, which textshift can swap "
                                f"into place. Choose a new folder below it, e.g. {option} ./results")


def _check_inputs(target: Path, absolute: Path, kind: OutputKind, inputs, option: str) -> None:
    resolved = absolute.resolve()
    for given in inputs:
        if given is None or str(given).startswith("embedded:"):
            continue
        source = Path(os.path.abspath(Path(given).expanduser()))
        if not source.exists():
            continue
        source = source.resolve()
        inside = kind.folder and not kind.reused and resolved in source.parents
        if source == resolved or inside:
            what = "model folder" if source.is_dir() else "file"
            where = f"is the input {what}" if source == resolved else f"contains the input {what} {given}"
            raise ForeignOutputError(f"{target} {where}; expected another output path, since textshift never "
                                     f"overwrites its input. Choose another {option} path")
