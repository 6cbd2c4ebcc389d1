"""The review's SQLite file: the scored items and an append-only log of every decision.

One file beside the data (``DATA.textshift-review.sqlite``) holds

* ``meta`` — which dataset the log belongs to (path, rows, sha256 of the file and of the texts) and which of its
  columns hold the texts and the labels (``label_column`` is empty for a review without labels);
* ``items`` — one row per item with the scores of :func:`textshift.inspection.inspect_data`, indexed so that a page
  of 100,000 items sorts and filters in milliseconds;
* ``edits`` — the log: item, action, old and new label, time; undo appends an ``undo`` entry, nothing is ever
  rewritten;
* ``state`` — each item's current decision, derived from the log in the same transaction as the edit.

Every edit is committed (WAL journal, ``synchronous=FULL``) before :meth:`ReviewStore.apply` returns, so an
edit the page has been told about survives the server being killed at any moment.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import operator
import os
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from textshift.data import EMBEDDED_PREFIX, TextData
from textshift.errors import ConfigError, DataError
from textshift.files import replace_file

SCHEMA_VERSION = 1
STORE_SUFFIX = ".textshift-review.sqlite"
ACTIONS = {"keep": "kept", "relabel": "relabeled", "delete": "deleted", "ambiguous": "ambiguous"}
STATUSES = ("unreviewed", "reviewed", *ACTIONS.values())
MAX_ROW = 2**53 - 1  # the largest integer the page's JavaScript holds exactly; SQLite's limit is 2**63 - 1
ISSUE_COLUMNS = {"label_error": "label_issue", "misclassified": "misclassified", "unsure": "unsure",
                 "duplicate": None, "conflict": "conflicting_duplicate", "leak": "split_leak"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    row INTEGER PRIMARY KEY, text TEXT NOT NULL, label TEXT, split TEXT, predicted TEXT,
    predicted_probability REAL, suggested_label TEXT, score REAL NOT NULL, label_quality REAL, margin REAL,
    issues TEXT NOT NULL, suspicious INTEGER NOT NULL, label_error INTEGER NOT NULL, misclassified INTEGER NOT NULL,
    unsure INTEGER NOT NULL, duplicate INTEGER NOT NULL, conflict INTEGER NOT NULL, leak INTEGER NOT NULL,
    duplicate_group INTEGER NOT NULL, similar_rows TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_score ON items (suspicious, score DESC, row);
CREATE INDEX IF NOT EXISTS items_by_group ON items (duplicate_group);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, row INTEGER NOT NULL, action TEXT NOT NULL,
    old_label TEXT, new_label TEXT, time TEXT NOT NULL, undoes INTEGER, previous INTEGER);
CREATE INDEX IF NOT EXISTS edits_by_batch ON edits (batch);
CREATE TABLE IF NOT EXISTS state (
    row INTEGER PRIMARY KEY, status TEXT NOT NULL, label TEXT, edit_id INTEGER NOT NULL);
"""


class EditLogMismatchError(DataError):
    """An edit log belongs to another dataset than the one it is opened with."""


def default_store_path(data_path: str | os.PathLike) -> Path:
    """``DATA.textshift-review.sqlite`` beside a data file; for ``embedded:NAME``, in the current folder."""
    text = str(data_path)
    if text.startswith(EMBEDDED_PREFIX):
        return Path.cwd() / f"embedded-{text[len(EMBEDDED_PREFIX):]}{STORE_SUFFIX}"
    path = Path(data_path)
    return path.with_name(path.name + STORE_SUFFIX)


def texts_sha256(texts: Iterable[str]) -> str:
    """Digest of the texts in order: tells apart row subsets of one file (e.g. embedded splits)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(str(text).encode("utf-8", "surrogatepass") + b"\x1f")
    return digest.hexdigest()


def data_identity(data: TextData) -> dict:
    """What identifies a dataset in the store's ``meta`` table."""
    identity = {"data_path": data.fingerprint.path, "data_rows": str(len(data)),
                "data_sha256": data.fingerprint.sha256, "texts_sha256": texts_sha256(data.frame["text"])}
    return identity


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def shown(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages that echo user input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def row_number(value, what: str = "item") -> int:
    """``value`` as a row (or group) number; a bool, a non-integer or one beyond :data:`MAX_ROW` is refused."""
    try:
        number = operator.index(value)  # int and numpy integers; not float, str or None
    except TypeError:
        number = None
    if number is None or isinstance(value, bool):
        raise ConfigError(f"{what} must be a whole number; got {shown(value)}")
    if not -MAX_ROW <= number <= MAX_ROW:
        raise DataError(f"{what} {shown(number, 30)} not found; expected a number below {MAX_ROW:,}")
    return number


def _clean(value):
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class ReviewStore:
    """The scored items and edit log of one dataset, in one SQLite file.

    Use :meth:`create` to start a review from an inspect result and :meth:`open` to continue one. All methods
    are safe to call from several threads (the web server's workers).

    Example
    -------
    >>> from textshift.review.store import ReviewStore
    >>> store = ReviewStore.open("bills.csv.textshift-review.sqlite", data=bills)   # doctest: +SKIP
    >>> store.apply(12, "relabel", label="Health")                                 # doctest: +SKIP
    """

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._connection = connection
        self._lock = threading.RLock()
        self._item_counts: dict | None = None  # items and meta never change after create: counted once

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            connection.row_factory = sqlite3.Row
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the page hears of it
            connection.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise DataError(f"cannot open the edit log {path}: {exc}; expected a textshift review SQLite file. "
                            "Move it away to start a new review") from exc
        if str(mode).lower() != "wal":
            raise DataError(f"the edit log {path} cannot use SQLite's WAL journal (found '{mode}'); expected a "
                            "local file system. Pass --store with a path on a local disk")
        return connection

    @classmethod
    def create(cls, path: str | os.PathLike, *, data: TextData, items: pd.DataFrame, classes: list[str],
               text_column: str | None = None, label_column: str | None = None, extra: dict | None = None
               ) -> ReviewStore:
        """Write a new store for ``data`` from an inspect items table (:class:`~textshift.inspection.InspectResult`).

        ``text_column`` and ``label_column`` name the file's columns that ``data`` read its texts and labels from
        (default: found in the file, see :func:`~textshift.review.export.file_columns`); the export writes the
        edits into that label column. Refuses to replace an existing store (its edits would
        be lost), and items whose labels are not the labels of ``data`` (the export could not apply an edit).
        """
        path = Path(path)
        if path.exists():
            raise ConfigError(f"the edit log {path} exists; expected a new path, as replacing it would lose its "
                              "edits. Open it with ReviewStore.open, or move it away")
        if len(items) != len(data):
            raise DataError(f"the inspect report has {len(items)} items but the data has {len(data)} rows; "
                            "expected the report of this data. Run inspect on it again")
        from textshift.review.export import file_columns

        text_column, label_column = file_columns(data, text_column=text_column, label_column=label_column)
        _check_item_labels(items["label"].tolist() if "label" in items else [None] * len(items), data,
                           label_column or "label")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        connection = cls._connect(tmp)
        try:
            connection.executescript(_SCHEMA)
            meta = data_identity(data) | {
                "schema_version": str(SCHEMA_VERSION), "created": _now(), "classes": json.dumps(classes),
                "text_column": text_column, "label_column": label_column or "",
                "has_labels": "1" if data.has_labels else "0", "extra": json.dumps(extra or {}, default=str)}
            connection.execute("BEGIN")
            connection.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
            connection.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _item_rows(items))
            connection.execute("COMMIT")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        replace_file(tmp, path)  # a half-written store never appears under the real name
        return cls(path, cls._connect(path))

    @classmethod
    def open(cls, path: str | os.PathLike, *, data: TextData | None = None) -> ReviewStore:
        """Open an existing store; with ``data``, refuse a store that was made for another dataset."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"edit log {path} not found; expected a file written by `textshift review`")
        connection = cls._connect(path)
        store = cls(path, connection)
        try:
            meta = store.meta
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise DataError(f"{path} is not a textshift edit log ({exc}); expected a file written by "
                            "`textshift review`. Move it away to start a new review") from exc
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            connection.close()
            raise DataError(f"{path} has edit-log schema {meta.get('schema_version')!r}; expected "
                            f"{SCHEMA_VERSION}. Export it with the textshift version that wrote it")
        if data is not None:
            store.check_data(data)
        return store

    def check_data(self, data: TextData) -> None:
        """Raise :class:`EditLogMismatchError` unless ``data`` is the dataset this store was made for.

        Labelled ``data`` must also carry the store's labels (read from :attr:`label_column`): relabels are
        decided against those labels.
        """
        meta = self.meta
        found = data_identity(data)
        if found["data_sha256"] != meta.get("data_sha256") or found["texts_sha256"] != meta.get("texts_sha256"):
            raise EditLogMismatchError(
                f"the edit log {self.path} belongs to another dataset ({meta.get('data_path')}, "
                f"{meta.get('data_rows')} rows, sha256 {str(meta.get('data_sha256'))[:12]}…) but DATA is "
                f"{found['data_path']} ({found['data_rows']} rows, sha256 {found['data_sha256'][:12]}…); expected "
                "the log of this dataset. Pass --store NEW_PATH to start a new review, or open the data it was "
                "made for")
        if data.has_labels:
            with self._lock:
                labels = [r[0] for r in self._connection.execute("SELECT label FROM items ORDER BY row")]
            column = self.label_column or meta.get("label_column") or "label"
            if labels != data.frame["label"].tolist():
                raise EditLogMismatchError(
                    f"the labels of DATA differ from those in the edit log {self.path}, which reviewed the labels "
                    f"of column '{column}'; expected the same label column. Pass --label-column {column}, or "
                    "--store NEW_PATH to start a new review")

    @property
    def text_column(self) -> str:
        """The file's column that holds the texts."""
        return self.meta.get("text_column") or "text"

    @property
    def label_column(self) -> str | None:
        """The file's column that holds the reviewed labels; None for a review without labels, or for a log
        written before textshift recorded it (see :meth:`record_label_column`)."""
        meta = self.meta
        return (meta.get("label_column") or None) if meta.get("has_labels") == "1" else None

    def has_item_labels(self) -> bool:
        """Whether the items carry labels (a relabel is possible)."""
        with self._lock:
            return self._connection.execute("SELECT EXISTS (SELECT 1 FROM items WHERE label IS NOT NULL)"
                                            ).fetchone()[0] == 1

    def record_label_column(self, data: TextData, label_column: str) -> None:
        """Record the label column of a log that has labelled items but no recorded label column.

        Earlier versions stored such logs when the data was opened without ``--label-column``; ``data`` (read
        with ``label_column``) must carry exactly the items' labels.
        """
        if self.label_column is not None or not self.has_item_labels():
            raise ConfigError(f"the edit log {self.path} already records its label column "
                              f"({self.label_column or 'none: a review without labels'}); expected a log without one")
        with self._lock:
            labels = [r[0] for r in self._connection.execute("SELECT label FROM items ORDER BY row")]
        _check_item_labels(labels, data, label_column)
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("label_column", label_column), ("has_labels", "1")])
        self._item_counts = None

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    @property
    def meta(self) -> dict:
        with self._lock:
            return {row["key"]: row["value"] for row in self._connection.execute("SELECT key, value FROM meta")}

    @property
    def classes(self) -> list[str]:
        return json.loads(self.meta.get("classes", "[]"))

    def summary(self) -> dict:
        """Counts for the page header: items, suspicious items, how many of them are reviewed, per issue."""
        with self._lock:
            db = self._connection
            if self._item_counts is None:
                sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in ("suspicious", *ISSUE_COLUMNS))
                total, suspicious, *issues = db.execute(f"SELECT COUNT(*), {sums} FROM items").fetchone()
                meta = self.meta
                self._item_counts = {"items": total, "suspicious": suspicious,
                                     "issues": dict(zip(ISSUE_COLUMNS, issues, strict=True)),
                                     "classes": json.loads(meta.get("classes", "[]")),
                                     "has_labels": meta.get("has_labels") == "1", "data": meta.get("data_path")}
            reviewed = db.execute("SELECT COUNT(*) FROM state JOIN items USING (row) WHERE items.suspicious = 1"
                                  ).fetchone()[0]
            by_status = dict(db.execute("SELECT status, COUNT(*) FROM state GROUP BY status").fetchall())
            can_undo = db.execute("SELECT EXISTS (SELECT 1 FROM edits WHERE action != 'undo' AND id NOT IN "
                                  "(SELECT undoes FROM edits WHERE undoes IS NOT NULL))").fetchone()[0] == 1
            counts = self._item_counts
        return {"items": counts["items"], "suspicious": counts["suspicious"], "reviewed": reviewed,
                "decided": sum(by_status.values()), "by_status": by_status, "issues": dict(counts["issues"]),
                "classes": list(counts["classes"]), "has_labels": counts["has_labels"], "data": counts["data"],
                "can_undo": can_undo}

    def query(self, *, view: str = "suspicious", label: str | None = None, predicted: str | None = None,
              issue: str | None = None, min_score: float | None = None, max_score: float | None = None,
              search: str | None = None, status: str | None = None, offset: int = 0, limit: int = 50
              ) -> tuple[int, list[dict]]:
        """One page of items, most suspicious first, and the number of items that match the filters.

        Parameters
        ----------
        view : str
            ``"suspicious"`` (default) or ``"all"``.
        label, predicted : str, optional
            Given / predicted class.
        issue : str, optional
            One of ``label_error, misclassified, unsure, duplicate, conflict, leak``.
        min_score, max_score : float, optional
            Suspicion score range (0 to 1).
        search : str, optional
            Case-insensitive substring of the text.
        status : str, optional
            ``unreviewed``, ``reviewed`` or one of ``kept, relabeled, deleted, ambiguous``.
        """
        if view not in ("suspicious", "all"):
            raise ConfigError(f"view must be 'suspicious' or 'all'; got {shown(view)}")
        if issue is not None and issue not in ISSUE_COLUMNS:
            raise ConfigError(f"issue must be one of {', '.join(ISSUE_COLUMNS)}; got {shown(issue)}")
        if status is not None and status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}; got {shown(status)}")
        where, params = [], []
        if view == "suspicious":
            where.append("items.suspicious = 1")
        if label is not None:
            where.append("items.label = ?")
            params.append(label)
        if predicted is not None:
            where.append("items.predicted = ?")
            params.append(predicted)
        if issue is not None:
            where.append(f"items.{issue} = 1")  # issue is checked against ISSUE_COLUMNS above
        if min_score is not None:
            where.append("items.score >= ?")
            params.append(float(min_score))
        if max_score is not None:
            where.append("items.score <= ?")
            params.append(float(max_score))
        if search:
            where.append("instr(lower(items.text), lower(?)) > 0")
            params.append(search)
        if status == "unreviewed":
            where.append("state.row IS NULL")
        elif status == "reviewed":
            where.append("state.row IS NOT NULL")
        elif status is not None:
            where.append("state.status = ?")
            params.append(status)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        limit = max(1, min(int(limit), 500))
        offset = max(0, min(int(offset), MAX_ROW))  # SQLite overflows beyond 2**63 - 1
        with self._lock:
            db = self._connection
            total = db.execute(f"SELECT COUNT(*) FROM items LEFT JOIN state USING (row) {clause}",
                               params).fetchone()[0]
            rows = db.execute(f"SELECT items.*, state.status AS status, state.label AS current_label FROM items "
                              f"LEFT JOIN state USING (row) {clause} ORDER BY items.score DESC, items.row "
                              "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return total, [_item_dict(row) for row in rows]

    def item(self, row: int, *, similar: bool = True) -> dict:
        """One item with its current decision, similar items and duplicate group."""
        row = row_number(row)
        with self._lock:
            db = self._connection
            found = db.execute("SELECT items.*, state.status AS status, state.label AS current_label FROM items "
                               "LEFT JOIN state USING (row) WHERE items.row = ?", (row,)).fetchone()
            if found is None:
                raise DataError(f"item {row} not found; expected a row number between 0 and "
                                f"{self._count() - 1}")
            item = _item_dict(found)
            if similar:
                rows = [int(r) for r in found["similar_rows"].split(";") if r != ""]
                item["similar"] = self._brief(rows)
                group = found["duplicate_group"]
                item["duplicates"] = (self._brief([r["row"] for r in db.execute(
                    "SELECT row FROM items WHERE duplicate_group = ? ORDER BY row LIMIT 200", (group,))])
                    if group >= 0 else [])
        return item

    def _count(self) -> int:
        return self._connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def _brief(self, rows: list[int]) -> list[dict]:
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {r["row"]: r for r in self._connection.execute(
            f"SELECT items.row, items.text, items.label, items.split, state.status AS status, "
            f"state.label AS current_label FROM items LEFT JOIN state USING (row) WHERE items.row IN ({marks})",
            rows)}
        return [{"row": r, "text": found[r]["text"], "label": found[r]["label"], "split": found[r]["split"],
                 "status": found[r]["status"] or "unreviewed",
                 "current_label": found[r]["current_label"] if found[r]["status"] else found[r]["label"]}
                for r in rows if r in found]

    def edits(self, *, limit: int | None = None) -> pd.DataFrame:
        """The edit log, oldest first: ``id, batch, row, action, old_label, new_label, time, undoes``."""
        sql = "SELECT id, batch, row, action, old_label, new_label, time, undoes FROM edits ORDER BY id"
        if limit is not None:
            sql = (f"SELECT * FROM (SELECT id, batch, row, action, old_label, new_label, time, undoes FROM edits "
                   f"ORDER BY id DESC LIMIT {int(limit)}) ORDER BY id")
        with self._lock:
            rows = self._connection.execute(sql).fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["id", "batch", "row", "action", "old_label", "new_label", "time", "undoes"])

    def decisions(self) -> pd.DataFrame:
        """Current decision of every edited item: ``row, status, label, original_label, text, time``."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT state.row, state.status, state.label, items.label AS original_label, items.text, "
                "edits.time FROM state JOIN items USING (row) JOIN edits ON edits.id = state.edit_id "
                "ORDER BY state.row").fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["row", "status", "label", "original_label", "text", "time"])

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _transaction(self):
        with self._lock:
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def apply(self, row: int, action: str, *, label: str | None = None) -> dict:
        """Record one decision and return the item's new state; committed to disk before returning.

        ``action`` is ``keep``, ``relabel`` (needs ``label``), ``delete`` or ``ambiguous``.
        """
        return self.apply_many([(row, action, label)])[0]

    def apply_many(self, decisions: list[tuple[int, str, str | None]]) -> list[dict]:
        """Record several decisions as one batch (undone together); committed before returning."""
        classes = set(self.classes)
        checked = []
        for row, action, label in decisions:
            if action not in ACTIONS:
                raise ConfigError(f"action must be one of {', '.join(ACTIONS)}; got {shown(action)}")
            if action == "relabel" and (label is None or label not in classes):
                raise ConfigError(f"relabel needs a label among the dataset's classes; got {shown(label)}. "
                                  "Choose one of the listed classes")
            checked.append((row_number(row), action, label))
        if not checked:
            return []
        results = []
        with self._transaction() as db:
            time = _now()  # inside the write lock, so the log's times never go backwards as its ids go up
            n_items = self._count()
            batch = db.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM edits").fetchone()[0]
            for row, action, label in checked:
                if not 0 <= row < n_items:
                    raise DataError(f"item {row} not found; expected a row number between 0 and {n_items - 1}")
                original = db.execute("SELECT label FROM items WHERE row = ?", (row,)).fetchone()["label"]
                current = db.execute("SELECT status, label, edit_id FROM state WHERE row = ?", (row,)).fetchone()
                old_label = current["label"] if current else original
                new_label = label if action == "relabel" else (None if action == "delete" else old_label)
                kept_label = label if action == "relabel" else old_label
                edit_id = db.execute(
                    "INSERT INTO edits (batch, row, action, old_label, new_label, time, previous) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?)",
                    (batch, row, action, old_label, new_label, time, current["edit_id"] if current else None)
                ).lastrowid
                db.execute("INSERT OR REPLACE INTO state (row, status, label, edit_id) VALUES (?, ?, ?, ?)",
                           (row, ACTIONS[action], kept_label, edit_id))
                results.append({"row": row, "status": ACTIONS[action], "current_label": kept_label,
                                "edit": edit_id, "batch": batch})
        return results

    def undo(self) -> list[dict]:
        """Undo the most recent batch of decisions that is not undone yet; returns the affected items' states.

        Each result also names the log entry written (``edit``), the entry it undoes (``undoes``) and its
        ``batch``, as :meth:`apply_many`'s results do.
        """
        results = []
        with self._transaction() as db:
            time = _now()
            last = db.execute("SELECT MAX(batch) FROM edits WHERE action != 'undo' AND id NOT IN "
                              "(SELECT undoes FROM edits WHERE undoes IS NOT NULL)").fetchone()[0]
            if last is None:
                return []
            undo_batch = db.execute("SELECT MAX(batch) + 1 FROM edits").fetchone()[0]
            for edit in db.execute("SELECT * FROM edits WHERE batch = ? AND action != 'undo' ORDER BY id DESC",
                                   (last,)).fetchall():
                previous = (db.execute("SELECT * FROM edits WHERE id = ?", (edit["previous"],)).fetchone()
                            if edit["previous"] is not None else None)
                restored_label = edit["old_label"]
                undo_id = db.execute(
                    "INSERT INTO edits (batch, row, action, old_label, new_label, time, undoes, previous) "
                    "VALUES (?, ?, 'undo', ?, ?, ?, ?, ?)",
                    (undo_batch, edit["row"], edit["new_label"], restored_label, time, edit["id"], edit["previous"])
                ).lastrowid
                logged = {"edit": undo_id, "undoes": edit["id"], "batch": undo_batch}
                if previous is None:
                    db.execute("DELETE FROM state WHERE row = ?", (edit["row"],))
                    results.append({"row": edit["row"], "status": "unreviewed", "current_label": restored_label,
                                    **logged})
                else:
                    status = ACTIONS[previous["action"]]
                    label = previous["new_label"] if previous["action"] != "delete" else previous["old_label"]
                    db.execute("INSERT OR REPLACE INTO state (row, status, label, edit_id) VALUES (?, ?, ?, ?)",
                               (edit["row"], status, label, previous["id"]))
                    results.append({"row": edit["row"], "status": status, "current_label": label, **logged})
        return results

    def keep_one(self, group: int, keep_row: int) -> list[dict]:
        """In a duplicate group, keep ``keep_row`` and delete the other members, as one undoable batch."""
        group, keep_row = row_number(group, "duplicate group"), row_number(keep_row)
        if group < 0:  # -1 marks the items that are in no group: never a set to thin out
            raise DataError(f"duplicate group {group} not found; expected a group number of 0 or more, as shown "
                            "with the item")
        with self._lock:
            members = [r["row"] for r in self._connection.execute(
                "SELECT row FROM items WHERE duplicate_group = ? ORDER BY row", (group,))]
        if keep_row not in members:
            raise DataError(f"item {keep_row} is not in duplicate group {group} (members: "
                            f"{', '.join(map(str, members[:10]))}); expected one of its members")
        return self.apply_many([(keep_row, "keep", None)] +
                               [(row, "delete", None) for row in members if row != keep_row])


def _check_item_labels(labels: list, data: TextData, label_column: str) -> None:
    """Refuse items with labels that ``data`` does not carry in the same rows: relabels could not be written."""
    has_item_labels = any(_clean(label) is not None for label in labels)
    if has_item_labels and not data.has_labels:
        raise DataError(f"the inspect items have labels but {data.fingerprint.path} was read without a label "
                        "column; expected the label column the items were scored with. Pass --label-column NAME as "
                        "given to inspect")
    if data.has_labels and [str(label) for label in labels] != data.frame["label"].tolist():
        raise DataError(f"the inspect items' labels differ from column '{label_column}' of "
                        f"{data.fingerprint.path}; expected the label column the items were scored with. Pass "
                        "--label-column NAME as given to inspect")


def _bool(value) -> int:
    return 1 if bool(value) and not (isinstance(value, float) and math.isnan(value)) else 0


def _item_rows(items: pd.DataFrame):
    has_label = "label" in items
    has_split = "split" in items
    columns = {name: items[name].tolist() if name in items else [None] * len(items)
               for name in ("predicted", "predicted_probability", "suggested_label", "score", "label_quality",
                            "margin", "issues", "suspicious", "label_issue", "misclassified", "unsure",
                            "conflicting_duplicate", "split_leak", "duplicate_group", "similar_rows")}
    texts = items["text"].tolist()
    labels = items["label"].tolist() if has_label else [None] * len(items)
    splits = items["split"].tolist() if has_split else [None] * len(items)
    rows = items["row"].tolist() if "row" in items else list(range(len(items)))
    for i in range(len(items)):
        group = columns["duplicate_group"][i]
        group = -1 if group is None or (isinstance(group, float) and math.isnan(group)) else int(group)
        issues = columns["issues"][i]
        issues = "" if issues is None or (isinstance(issues, float) and math.isnan(issues)) else str(issues)
        similar = columns["similar_rows"][i]
        similar = "" if similar is None or (isinstance(similar, float) and math.isnan(similar)) else str(similar)
        score = _clean(columns["score"][i])
        yield (int(rows[i]), str(texts[i]), labels[i], None if splits[i] is None else str(splits[i]),
               columns["predicted"][i] or None, _clean(columns["predicted_probability"][i]),
               columns["suggested_label"][i] or None, 0.0 if score is None else float(score),
               _clean(columns["label_quality"][i]), _clean(columns["margin"][i]), issues,
               _bool(columns["suspicious"][i]), _bool(columns["label_issue"][i]), _bool(columns["misclassified"][i]),
               _bool(columns["unsure"][i]), 1 if group >= 0 else 0, _bool(columns["conflicting_duplicate"][i]),
               _bool(columns["split_leak"][i]), group, similar)


def _item_dict(row: sqlite3.Row) -> dict:
    status = row["status"] or "unreviewed"
    return {"row": row["row"], "text": row["text"], "label": row["label"], "split": row["split"],
            "predicted": row["predicted"], "predicted_probability": row["predicted_probability"],
            "suggested_label": row["suggested_label"], "score": row["score"], "margin": row["margin"],
            "issues": [issue for issue in row["issues"].split(";") if issue],
            "duplicate_group": row["duplicate_group"], "status": status,
            "current_label": row["current_label"] if row["status"] else row["label"]}
