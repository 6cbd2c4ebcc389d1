"""Review a labelled dataset in the browser: fix what :mod:`textshift.inspect` found, and never lose an edit.

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
from pathlib import Path

from textshift.data import EMBEDDED_PREFIX, TextData, read_labeled
from textshift.errors import DataError
from textshift.review.export import ExportSummary, export_cleaned, source_columns
from textshift.review.retrain import before_after
from textshift.review.server import (ReviewServer, check_host, check_port, check_token, create_app, is_loopback,
                                     new_token)
from textshift.review.store import EditLogMismatchError, ReviewStore, default_store_path

__all__ = ["EditLogMismatchError", "ExportSummary", "ReviewServer", "ReviewStore", "before_after",
           "default_store_path", "export_cleaned", "load_data", "open_store", "start_review"]


def load_data(data: str | os.PathLike | TextData, *, text_column: str | None = None,
              label_column: str | None = None) -> TextData:
    """A :class:`TextData` from a path (labels optional) or as given."""
    if isinstance(data, TextData):
        return data
    return read_labeled(data, text_column=text_column, label_column=label_column, require_labels=False)


def open_store(data: str | os.PathLike | TextData, *, store: str | os.PathLike | None = None,
               model: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
               backbone: str | None = None, config=None, text_column: str | None = None,
               label_column: str | None = None, on_stage: Callable[[str], None] | None = None) -> ReviewStore:
    """Open the edit log of ``data``, creating it first if needed.

    An existing log is reused as is (its scores and edits), after checking that it belongs to ``data``.
    A new one is filled from ``report`` (a folder written by ``textshift inspect -o``) when given, otherwise
    by running :func:`textshift.inspect.inspect_data` (with ``model``, ``backbone`` and ``config``).
    """
    from textshift.inspect import inspect_data, load_report

    data = load_data(data, text_column=text_column, label_column=label_column)
    path = Path(store) if store is not None else default_store_path(data.fingerprint.path)
    if path.exists():
        return ReviewStore.open(path, data=data)
    if report is not None:
        result = load_report(report)
        if result.data.get("sha256") != data.fingerprint.sha256 or int(result.data.get("rows", -1)) != len(data):
            raise DataError(f"the inspect report {report} was made for {result.data.get('path')} "
                            f"({result.data.get('rows')} rows) but DATA is {data.fingerprint.path} ({len(data)} "
                            "rows, different content); expected the report of this data. Run `textshift inspect` "
                            "on it again")
    else:
        result = inspect_data(data, model=model, backbone=backbone, config=config, on_stage=on_stage)
    texts, labels = source_columns(data.fingerprint.path, text_column, label_column)
    return ReviewStore.create(path, data=data, items=result.items, classes=result.classes, text_column=texts,
                              label_column=labels, extra={"summary": result.summary})


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
    data = load_data(data, text_column=text_column, label_column=label_column)
    review_store = open_store(data, store=store, model=model, report=report, backbone=backbone, config=config,
                              text_column=text_column, label_column=label_column, on_stage=on_stage)
    if token is None and not is_loopback(host):
        token = new_token()
    if export_dir is None:
        source = str(data.fingerprint.path)
        export_dir = Path.cwd() if source.startswith(EMBEDDED_PREFIX) else Path(source).resolve().parent
    try:
        app = create_app(review_store, data, export_dir=export_dir, token=token, loopback_only=is_loopback(host))
        server = ReviewServer(app, host=host, port=port, token=token, store=review_store)
    except BaseException:
        review_store.close()
        raise
    return server.start() if background else server
