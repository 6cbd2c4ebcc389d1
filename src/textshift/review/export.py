"""Writing the cleaned dataset and the list of changes; the original file is never touched.

The cleaned file has the original file's columns and row order, with relabelled labels and without deleted
rows; ``NAME.changes.csv`` beside it lists every changed item (``row, action, old_label, new_label, time,
text``). Both are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textshift.data import EMBEDDED, EMBEDDED_PREFIX, TextData, atomic_write_frame, detect_format, same_file
from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.review.store import ReviewStore

CHANGE_COLUMNS = ["row", "action", "old_label", "new_label", "time", "text"]


class UnsafeExportPathError(ConfigError):
    """An export file name would write outside the export folder, or over the data."""


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
    """``cleaned.csv`` → ``cleaned.changes.csv``."""
    output = Path(output)
    stem = output.name[: -len("".join(output.suffixes))] if output.suffixes else output.name
    return output.with_name(f"{stem}.changes.csv")


def safe_export_path(folder: str | os.PathLike, name: str) -> Path:
    """Resolve a file name chosen on the review page inside ``folder``; refuse anything that would escape it.

    Only a plain file name is accepted: no folders, no ``..``, no absolute path, no hidden file, and the
    resolved path (symbolic links followed) must lie inside ``folder``.
    """
    folder = Path(folder).resolve()
    name = str(name or "").strip()
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith(".")
            or os.path.isabs(name) or ":" in name):
        raise UnsafeExportPathError(f"export name {name!r} is not a plain file name; expected a name like "
                                    f"cleaned.csv, written inside {folder}")
    target = (folder / name).resolve()
    if target.parent != folder:
        raise UnsafeExportPathError(f"export name {name!r} leads outside {folder}; expected a file inside it")
    try:
        detect_format(target)
    except DataError as exc:
        raise UnsafeExportPathError(f"export name {name!r} has no data extension; expected a name ending in "
                                    ".csv, .tsv, .jsonl or .parquet") from exc
    return target


def cleaned_frame(data: TextData, store: ReviewStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cleaned rows (original column names) and the changes table, without writing anything."""
    meta = store.meta
    text_column = meta.get("text_column") or "text"
    label_column = meta.get("label_column") or "label"
    decisions = store.decisions()
    frame = data.frame.copy()
    has_labels = "label" in frame
    label_differs = decisions["label"].fillna("\0") != decisions["original_label"].fillna("\0")
    changed = decisions[decisions["status"].isin(["deleted", "ambiguous"]) | label_differs]
    if has_labels:
        relabel = decisions[(decisions["status"] != "deleted") & decisions["label"].notna() & label_differs]
        frame.loc[relabel["row"].to_numpy(), "label"] = relabel["label"].to_numpy()
    deleted_rows = decisions.loc[decisions["status"] == "deleted", "row"].to_numpy()
    frame = frame.drop(index=deleted_rows)
    rename = {"text": text_column}
    if has_labels:
        rename["label"] = label_column
    frame = frame.rename(columns=rename)
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
    """Write the cleaned dataset to ``output`` and the changes to ``OUTPUT_STEM.changes.csv``, atomically.

    Raises :class:`~textshift.errors.OutputExistsError` when ``output`` is the original data (never
    overwritten) or exists and ``overwrite`` is False.
    """
    store.check_data(data)
    output = Path(output)
    detect_format(output)
    changes_output = changes_path(output)
    source = Path(str(data.fingerprint.path))
    for target in (output, changes_output):
        if (same_file(source, target) or target.resolve() == source.resolve() or same_file(store.path, target)):
            raise OutputExistsError(f"export {target} is the data or its edit log; expected another path. "
                                    "textshift never modifies the original data")
        if target.exists() and not overwrite:
            raise OutputExistsError(f"{target} exists; expected a new file. Pass --overwrite or choose another "
                                    "name")
    frame, changes = cleaned_frame(data, store)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_frame(changes, changes_output)
    atomic_write_frame(frame, output)
    counts = changes["action"].value_counts()
    return ExportSummary(output=output, changes=changes_output, rows=len(frame),
                         relabeled=int(counts.get("relabel", 0)), deleted=int(counts.get("delete", 0)),
                         ambiguous=int(counts.get("ambiguous", 0)))
