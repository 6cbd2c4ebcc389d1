"""Writing the cleaned dataset and the list of changes; the original file is never touched.

The cleaned file has the original file's columns and row order, with relabelled labels and without deleted
rows; a CSV of changes beside it lists every changed item (``row, action, old_label, new_label, time, text``):
``NAME.changes.csv`` for ``NAME.csv``, the full name plus ``.changes.csv`` for other formats
(``NAME.parquet.changes.csv``, ``NAME.csv.gz.changes.csv``; see :func:`changes_path`). Both are written to a
temporary file and renamed into place.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textshift.data import (EMBEDDED, EMBEDDED_PREFIX, TextData, atomic_write_frame, detect_format, embedded_path,
                            file_sha256, same_file)
from textshift.data import _label_str, _read_frame, _resolve  # the reader behind read_labeled, for raw columns
from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.review.store import ReviewStore, shown

CHANGE_COLUMNS = ["row", "action", "old_label", "new_label", "time", "text"]
MAX_NAME_BYTES = 200  # file names may have 255 bytes; the temporary and ``.changes.csv`` names are longer


class UnsafeExportPathError(ConfigError):
    """An export file name would write outside the export folder, or over the data."""


class ProtectedOutputError(OutputExistsError):
    """An export would replace the data or its edit log: refused even with ``overwrite``."""


@dataclass
class ExportSummary:
    """What :func:`export_cleaned` wrote."""

    output: Path
    changes: Path
    rows: int
    relabeled: int
    deleted: int
    ambiguous: int

    def to_dict(self) -> dict:
        return {"output": str(self.output), "changes": str(self.changes), "rows": self.rows,
                "relabeled": self.relabeled, "deleted": self.deleted, "ambiguous": self.ambiguous}


def source_columns(path: str | os.PathLike, text_column: str | None, label_column: str | None) -> tuple[str, str]:
    """The text and label column names as they are in the file (what :func:`textshift.data.read_labeled` uses)."""
    text = str(path)
    spec = EMBEDDED.get(text[len(EMBEDDED_PREFIX):]) if text.startswith(EMBEDDED_PREFIX) else None
    return (text_column or (spec.text_column if spec else "text"),
            label_column or (spec.label_column if spec and spec.label_column else "label"))


def changes_path(output: str | os.PathLike) -> Path:
    """The changes file of an export: ``clean.csv`` → ``clean.changes.csv``, ``clean.parquet`` →
    ``clean.parquet.changes.csv``, ``clean.csv.gz`` → ``clean.csv.gz.changes.csv``.

    Only a final ``.csv`` is dropped, so exports of one name in two formats never share a change list.
    """
    output = Path(output)
    name = output.name[: -len(".csv")] if output.name.lower().endswith(".csv") else output.name
    return output.with_name(f"{name}.changes.csv")


def _is_changes_file(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readline().strip() == ",".join(CHANGE_COLUMNS)


def check_export_path(output: str | os.PathLike, *, overwrite: bool = False,
                      protected: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Fail at once unless an export can be written to ``output`` and its :func:`changes_path`: neither may be
    one of the ``protected`` files (the data, its edit log; :class:`ProtectedOutputError`), both must be
    writable, and an existing pair is replaced only with ``overwrite``; a file of the user's (one without the
    changes file an export writes beside it) is never replaced. See :func:`textshift.outputs.check_output`."""
    from textshift.outputs import OutputKind, check_output

    output = Path(output).expanduser()
    detect_format(output)
    for target in (output, changes_path(output)):
        for source in map(Path, protected):
            if same_file(source, target) or target.resolve() == source.resolve():
                raise ProtectedOutputError(f"export {target} is the data or its edit log; expected another path. "
                                           "textshift never modifies the original data")
    cleaned = OutputKind("a review export", folder=False,
                         owns=lambda p: changes_path(p).is_file() and _is_changes_file(changes_path(p)))
    check_output(output, cleaned, overwrite=overwrite, option="--export")
    check_output(changes_path(output), OutputKind("a review changes file", folder=False, owns=_is_changes_file),
                 overwrite=overwrite, option="--export")
    return output


def data_file(data: TextData) -> Path:
    """The file ``data`` was read from; for ``embedded:NAME``, the package's own file."""
    source = str(data.fingerprint.path)
    if source.startswith(EMBEDDED_PREFIX) and source[len(EMBEDDED_PREFIX):] in EMBEDDED:
        return embedded_path(source[len(EMBEDDED_PREFIX):])
    return Path(source)


def safe_export_path(folder: str | os.PathLike, name: str) -> Path:
    """Resolve a file name chosen on the review page inside ``folder``; refuse anything that would escape it.

    Only a plain file name is accepted: no folders, no ``..``, no absolute path, no hidden file, and the
    resolved path (symbolic links followed) must lie inside ``folder``.
    """
    folder = Path(folder).resolve()
    name = str(name or "").strip()
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name):
        raise UnsafeExportPathError(f"export name {shown(name)} has control characters (such as a line break); "
                                    "expected a plain file name like cleaned.csv")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UnsafeExportPathError(f"export name {shown(name)} is {len(name.encode('utf-8'))} bytes long; "
                                    f"expected at most {MAX_NAME_BYTES}. Choose a shorter name")
    if (not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".")
            or os.path.isabs(name) or ":" in name):
        raise UnsafeExportPathError(f"export name {shown(name)} is not a plain file name; expected a name like "
                                    f"cleaned.csv, written inside {folder}")
    target = (folder / name).resolve()
    if target.parent != folder:
        raise UnsafeExportPathError(f"export name {shown(name)} leads outside {folder}; expected a file inside it")
    try:
        detect_format(target)
    except DataError as exc:
        raise UnsafeExportPathError(f"export name {shown(name)} has no data extension; expected a name ending in "
                                    ".csv, .tsv, .jsonl or .parquet") from exc
    return target


def _file_rows(data: TextData) -> pd.DataFrame | None:
    """The rows of ``data`` as they are in its file (every column, values as read); None for in-memory data.

    Rows follow ``data`` (for a :meth:`TextData.subset`, its rows of the file). Raises
    :class:`~textshift.errors.DataError` when the file changed since ``data`` was read.
    """
    source = str(data.fingerprint.path)
    if not source.startswith(EMBEDDED_PREFIX) and not Path(source).is_file():
        return None
    file, spec = _resolve(source)
    if file_sha256(file) != data.fingerprint.sha256:
        raise DataError(f"{source} changed since it was read for the review; expected the reviewed file. Restore "
                        "it, or start a new review of the new file with --store NEW_PATH")
    frame = _read_frame(file, detect_format(file))
    if spec and spec.split:
        frame = frame[frame["split"] == spec.split]
    frame = frame.reset_index(drop=True)
    rows = data.frame.index.to_numpy()  # a subset keeps the file's row numbers as its index
    if len(rows) and (rows.min() < 0 or rows.max() >= len(frame)):
        raise DataError(f"the review of {source} has rows the file does not have; expected the file the data was "
                        "read from. Export with the TextData the review was made with")
    return frame.iloc[rows].reset_index(drop=True)


def _as_text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _matching_column(frame: pd.DataFrame, values: list[str], preferred: str, kind: str, given: bool, source: str,
                     spell) -> str:
    """The column of ``frame`` whose values, spelled by ``spell``, are ``values``; ``preferred`` when it is one."""
    def matches(column) -> bool:
        return [spell(value) for value in frame[column]] == values

    if preferred in frame and matches(preferred):
        return preferred
    found = [] if given else [column for column in frame.columns if matches(column)]
    if len(found) != 1:
        raise DataError(f"cannot tell which column of {source} holds the {kind}s (column '{preferred}' does not "
                        f"hold them); expected the column the data was read from. Pass --{kind}-column NAME "
                        f"({kind}_column=NAME)")
    return str(found[0])


def file_columns(data: TextData, *, text_column: str | None = None, label_column: str | None = None
                 ) -> tuple[str, str | None]:
    """The columns of the data's file that ``data`` read its texts and labels from (label None when unlabelled).

    Names given are checked against the file; a name not given is the default (``text``, ``label``, or the
    embedded dataset's), or else the one column whose values are the data's. This is what an edit log records,
    so that its export writes each relabel into the column it came from.
    """
    texts, labels = source_columns(data.fingerprint.path, text_column, label_column)
    frame = _file_rows(data)
    if frame is None:  # in-memory data: no file whose names could be kept
        return texts, labels if data.has_labels else None
    source = str(data.fingerprint.path)
    texts = _matching_column(frame, data.texts, texts, "text", text_column is not None, source, _as_text)
    if not data.has_labels:
        return texts, None
    return texts, _matching_column(frame, data.frame["label"].tolist(), labels, "label", label_column is not None,
                                   source, _label_str)


def source_frame(data: TextData, store: ReviewStore) -> pd.DataFrame:
    """The reviewed rows as they are in the data's file: every column under its own name, values as read.

    In-memory data, which has no file, gives its own frame under the store's column names.
    """
    frame = _file_rows(data)
    if frame is None:
        return data.frame.reset_index(drop=True).rename(
            columns={"text": store.text_column, "label": store.label_column or "label"})
    text_column = store.text_column
    if text_column not in frame or [_as_text(value) for value in frame[text_column]] != data.texts:
        raise DataError(f"the texts of the review are not those of column '{text_column}' of "
                        f"{data.fingerprint.path}; expected the file the data was read from. Export with the "
                        "TextData the review was made with")
    return frame


def cleaned_frame(data: TextData, store: ReviewStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cleaned rows (original columns, names and values) and the changes table, without writing anything.

    Relabels are written into the file's label column recorded in the edit log (:attr:`ReviewStore.label_column`).
    Raises :class:`~textshift.errors.DataError` when a relabel cannot be written there, rather than list a change
    that the cleaned rows do not have.
    """
    decisions = store.decisions()
    frame = source_frame(data, store)
    label_differs = decisions["label"].fillna("\0") != decisions["original_label"].fillna("\0")
    changed = decisions[decisions["status"].isin(["deleted", "ambiguous"]) | label_differs]
    relabel = decisions[(decisions["status"] != "deleted") & decisions["label"].notna() & label_differs]
    if len(relabel):
        label_column = store.label_column
        if label_column is None or label_column not in frame:
            found = ("does not record which column holds the labels (it was written by an earlier textshift)"
                     if label_column is None else f"records the labels in column '{label_column}', which "
                     f"{data.fingerprint.path} does not have")
            raise DataError(f"cannot write {len(relabel)} relabel(s): the edit log {store.path} {found}; expected "
                            "a label column to write them into. Run `textshift review DATA --label-column NAME "
                            "--export ...` with the column the review was made with")
        rows = relabel["row"].to_numpy()
        before = [_label_str(value) for value in frame.loc[rows, label_column]]
        if before != relabel["original_label"].tolist():  # never report an edit written over other labels
            raise DataError(f"column '{label_column}' of {data.fingerprint.path} does not hold the labels the edit "
                            f"log {store.path} reviewed; expected the reviewed labels there. Start a new review "
                            "with --store NEW_PATH")
        frame[label_column] = frame[label_column].astype(object)  # a numeric column takes a class name
        frame.loc[rows, label_column] = relabel["label"].to_numpy()
    deleted_rows = decisions.loc[decisions["status"] == "deleted", "row"].to_numpy()
    frame = frame.drop(index=deleted_rows)
    actions = []
    for record in changed.itertuples(index=False):
        if record.status == "deleted":
            action = "delete"
        elif record.status == "ambiguous":
            action = "ambiguous"
        else:
            action = "relabel"
        actions.append(action)
    changes = pd.DataFrame({
        "row": changed["row"].to_numpy(), "action": actions, "old_label": changed["original_label"].to_numpy(),
        "new_label": [None if status == "deleted" else label
                      for status, label in zip(changed["status"], changed["label"])],
        "time": changed["time"].to_numpy(), "text": changed["text"].to_numpy()}, columns=CHANGE_COLUMNS)
    return frame, changes


def export_cleaned(data: TextData, store: ReviewStore, output: str | os.PathLike, *, overwrite: bool = False
                   ) -> ExportSummary:
    """Write the cleaned dataset to ``output`` and the changes to :func:`changes_path` of it, atomically.

    Raises :class:`ProtectedOutputError` when ``output`` or its changes file is the original data (for
    ``embedded:NAME`` the package's file) or the edit log, even with ``overwrite``, and
    :class:`~textshift.errors.OutputExistsError` when an earlier export is there and ``overwrite`` is False;
    a file there that is not an earlier export is never replaced (:class:`~textshift.errors.ForeignOutputError`).
    """
    if not isinstance(data, TextData):
        raise DataError(f"data must be the reviewed TextData; got a {type(data).__name__}. Load it with "
                        "textshift.review.load_data(path) first")
    store.check_data(data)
    output = Path(output)
    detect_format(output)
    changes_output = changes_path(output)
    check_export_path(output, overwrite=overwrite, protected=(data_file(data), store.path))
    frame, changes = cleaned_frame(data, store)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_frame(changes, changes_output)
        atomic_write_frame(frame, output)
    except OSError as exc:
        raise DataError(f"cannot write the export {output} ({exc.strerror or exc}); expected a writable folder. "
                        "Choose another path") from exc
    counts = changes["action"].value_counts()
    return ExportSummary(output=output, changes=changes_output, rows=len(frame),
                         relabeled=int(counts.get("relabel", 0)), deleted=int(counts.get("delete", 0)),
                         ambiguous=int(counts.get("ambiguous", 0)))
