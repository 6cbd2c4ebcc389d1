"""Review a labelled dataset in the browser: fix what :mod:`textshift.inspection` found, and never lose an edit.

:func:`start_review` scores the data (or reuses a saved inspect report / an existing edit log), starts the
local web app and returns a :class:`~textshift.review.server.ReviewServer` with its URL — from a notebook cell
too. Decisions are appended to an SQLite edit log beside the data (:class:`~textshift.review.store.ReviewStore`);
:func:`~textshift.review.export.export_cleaned` writes the cleaned copy and a CSV of changes, and
:func:`~textshift.review.retrain.before_after` scores a quick classifier trained before and after review.

Example
-------
>>> from textshift.review import start_review
>>> server = start_review("bills.csv")     # doctest: +SKIP
>>> server.url                             # doctest: +SKIP
'http://127.0.0.1:8765/'
>>> server.stop()                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from textshift.data import EMBEDDED_PREFIX, TextData, read_labeled
from textshift.errors import ConfigError, DataError
from textshift.review.export import ExportSummary, export_cleaned, file_columns
from textshift.review.retrain import before_after
from textshift.review.server import (
    ReviewServer,
    check_host,
    check_port,
    check_token,
    create_app,
    serve,
)
from textshift.review.store import EditLogMismatchError, ReviewStore, default_store_path

__all__ = ["EditLogMismatchError", "ExportSummary", "ReviewServer", "ReviewStore", "before_after",
           "default_store_path", "export_cleaned", "load_data", "open_store", "review_columns", "start_review"]


def load_data(data: str | os.PathLike | TextData, *, text_column: str | None = None,
              label_column: str | None = None, labels: bool = True) -> TextData:
    """A :class:`TextData` from a path (labels optional; none at all with ``labels=False``) or as given."""
    if isinstance(data, TextData):
        return data
    found = read_labeled(data, text_column=text_column, label_column=label_column, require_labels=False)
    if not labels and found.has_labels:
        found = TextData(found.frame.drop(columns="label"), found.fingerprint, list(found.warnings))
    return found


def _recorded_columns(data: str | os.PathLike, store: str | os.PathLike | None,
                      report: str | os.PathLike | None) -> tuple[str, str | None, str | None, bool] | None:
    """``(where, text column, label column, labelled)`` as recorded by the edit log or the inspect report."""
    import json

    path = Path(store) if store is not None else default_store_path(data)
    if path.exists():
        with ReviewStore.open(path) as log:
            if log.label_column is None and log.has_item_labels():
                return f"the edit log {path}", log.text_column, None, True  # an older log: label column unknown
            return f"the edit log {path}", log.text_column, log.label_column, log.label_column is not None
    if report is not None and (Path(report) / "summary.json").is_file():
        try:
            recorded = json.loads((Path(report) / "summary.json").read_text())
            columns, has_labels = recorded["data"], bool(recorded["summary"]["has_labels"])
        except (ValueError, KeyError, TypeError):
            return None  # load_report names what is wrong with the report
        if "text_column" in columns:
            return f"the inspect report {report}", columns["text_column"], columns.get("label_column"), has_labels
    return None


def review_columns(data: str | os.PathLike, *, store: str | os.PathLike | None = None,
                   report: str | os.PathLike | None = None, text_column: str | None = None,
                   label_column: str | None = None) -> tuple[str | None, str | None, bool]:
    """The columns to read ``data`` with for its review: ``(text_column, label_column, labels)``.

    An existing edit log, else ``report``, records the columns the review was scored on; names not given are
    taken from there, and a name given that disagrees is refused (its relabels belong to the recorded column).
    ``labels`` is False when the review was made without labels.
    """
    recorded = _recorded_columns(data, store, report)
    if recorded is None:
        return text_column, label_column, True
    where, texts, labels, labelled = recorded
    fix = ("pass --store NEW_PATH to start a new review" if where.startswith("the edit log")
           else "run inspect again with the column you want")
    if text_column is not None and texts and text_column != texts:
        raise ConfigError(f"--text-column {text_column} disagrees with {where}, which was made from column "
                          f"'{texts}'; expected the same column. Leave --text-column out, or {fix}")
    if label_column is not None and labels is not None and label_column != labels:
        raise ConfigError(f"--label-column {label_column} disagrees with {where}, which holds the labels of column "
                          f"'{labels}'; expected the same column. Leave --label-column out, or {fix}")
    if label_column is not None and not labelled:
        raise ConfigError(f"--label-column {label_column} disagrees with {where}, which was made without labels; "
                          f"expected no --label-column. Leave it out, or {fix}")
    return text_column or texts, label_column or labels, labelled


def open_store(data: str | os.PathLike | TextData, *, store: str | os.PathLike | None = None,
               model: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
               backbone: str | None = None, config=None, text_column: str | None = None,
               label_column: str | None = None, on_stage: Callable[[str], None] | None = None) -> ReviewStore:
    """Open the edit log of ``data``, creating it first if needed.

    An existing log is reused as is (its scores and edits), after checking that it belongs to ``data``.
    A new one is filled from ``report`` (a folder written by ``textshift inspect -o``) when given, otherwise
    by running :func:`textshift.inspection.inspect_data` (with ``model``, ``backbone`` and ``config``).
    For a path, columns not given are read from the log or the report (:func:`review_columns`). The log records
    the file's text and label columns: its export writes each relabel into the label column.
    """
    from textshift.inspection import inspect_data, load_report

    labels = True
    if not isinstance(data, TextData):
        text_column, label_column, labels = review_columns(data, store=store, report=report,
                                                           text_column=text_column, label_column=label_column)
    data = load_data(data, text_column=text_column, label_column=label_column, labels=labels)
    path = Path(store) if store is not None else default_store_path(data.fingerprint.path)
    if path.exists():
        log = ReviewStore.open(path, data=data)
        if log.label_column is None and data.has_labels and log.has_item_labels():
            try:  # a log of an earlier textshift: record the column its labels are in, once they are known
                log.record_label_column(data, file_columns(data, text_column=text_column,
                                                           label_column=label_column)[1])
            except BaseException:
                log.close()
                raise
        return log
    if report is not None:
        result = load_report(report)
        if result.data.get("sha256") != data.fingerprint.sha256 or int(result.data.get("rows", -1)) != len(data):
            raise DataError(f"the inspect report {report} was made for {result.data.get('path')} "
                            f"({result.data.get('rows')} rows) but DATA is {data.fingerprint.path} ({len(data)} "
                            "rows, different content); expected the report of this data. Run `textshift inspect` "
                            "on it again")
    else:
        result = inspect_data(data, model=model, backbone=backbone, config=config, on_stage=on_stage)
    return ReviewStore.create(path, data=data, items=result.items, classes=result.classes, text_column=text_column,
                              label_column=label_column, extra={"summary": result.summary})


def start_review(data: str | os.PathLike | TextData, *, store: str | os.PathLike | None = None,
                 model: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
                 host: str = "127.0.0.1", port: int = 0, export_dir: str | os.PathLike | None = None,
                 token: str | None = None, backbone: str | None = None, config=None,
                 text_column: str | None = None, label_column: str | None = None, background: bool = True,
                 on_stage: Callable[[str], None] | None = None) -> ReviewServer:
    """Start the review page for ``data`` and return the server (``.url``, ``.stop()``).

    Parameters
    ----------
    data : path or TextData
        The dataset (``embedded:NAME`` works too).
    store : path, optional
        Edit log [default: ``DATA.textshift-review.sqlite`` beside the data].
    model, report, backbone, config
        How to score the data when the edit log is new (see :func:`open_store`).
    host : str
        Address to bind; ``127.0.0.1`` by default. On any non-loopback address a random token is required for
        every API call; it is part of ``server.url``.
    port : int
        ``0`` picks a free port.
    export_dir : path, optional
        Folder the page's export button writes into [default: the data's folder; the current folder for
        embedded data].
    token : str, optional
        Use this token instead of a random one (it is required whenever set); at least 16 characters among
        letters, digits and ``-_.~``.
    background : bool
        Serve in a background thread (for notebooks and tests) and return at once; False returns a server to
        ``.run()`` in the foreground.
    """
    check_host(host)  # before scoring, which can take minutes
    check_port(port)
    check_token(token)
    if not isinstance(data, TextData):
        text_column, label_column, labels = review_columns(data, store=store, report=report,
                                                           text_column=text_column, label_column=label_column)
        data = load_data(data, text_column=text_column, label_column=label_column, labels=labels)
    review_store = open_store(data, store=store, model=model, report=report, backbone=backbone, config=config,
                              text_column=text_column, label_column=label_column, on_stage=on_stage)
    if export_dir is None:
        source = str(data.fingerprint.path)
        export_dir = Path.cwd() if source.startswith(EMBEDDED_PREFIX) else Path(source).resolve().parent
    return serve(review_store, partial(create_app, review_store, data, export_dir=export_dir), host=host, port=port,
                 token=token, background=background)
