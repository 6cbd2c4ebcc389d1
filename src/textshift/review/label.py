"""Label suggested texts in the browser: one text at a time, the model's guess pre-selected, every decision logged.

The page (``static/label.html``) runs on the review server's stack (:class:`~textshift.review.server.ReviewServer`,
the same request guard and headers). Decisions go to a :class:`LabelStore`, the review's crash-safe SQLite edit
log (:class:`~textshift.review.store.ReviewStore`) with one difference: a label the person types that is not a
class yet becomes one. Labelling a text is a ``relabel`` entry, skipping it an ``ambiguous`` one; undo appends,
as in the review. :func:`export_labels` writes ``text,label`` — the file ``train``, ``transfer``, ``compare``
and ``suggest --labeled`` read.

Example
-------
>>> from textshift.review.label import start_labelling
>>> server = start_labelling("to_label.csv", classes=["Health", "Defense"])   # doctest: +SKIP
>>> server.url                                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import TextData, atomic_write_frame, read_texts, same_file
from textshift.errors import ConfigError, DataError, OutputExistsError, TextshiftError
from textshift.review.store import ReviewStore, shown

logger = logging.getLogger(__name__)

LABEL_STORE_SUFFIX = ".textshift-label.sqlite"
MAX_LABEL_CHARS = 100


def default_label_store_path(suggestions: str | os.PathLike) -> Path:
    """``FILE.textshift-label.sqlite`` beside the suggestions file."""
    path = Path(suggestions)
    return path.with_name(path.name + LABEL_STORE_SUFFIX)


def check_new_label(label) -> str:
    """A label typed by the person, trimmed; raises ConfigError for an empty, over-long or control-character one."""
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"a label must be a non-empty text; got {shown(label)}. Type a class name")
    label = label.strip()
    if len(label) > MAX_LABEL_CHARS or any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in label):
        raise ConfigError(f"a label must be at most {MAX_LABEL_CHARS} printable characters; got {shown(label)}. "
                          "Type a shorter class name")
    return label


class LabelStore(ReviewStore):
    """The review's edit log for labelling: the same tables and guarantees, and classes that can grow."""

    def add_class(self, label: str) -> None:
        """Make ``label`` a class (committed before returning); nothing happens if it is one already."""
        label = check_new_label(label)
        with self._transaction() as db:
            classes = json.loads(db.execute("SELECT value FROM meta WHERE key = 'classes'").fetchone()[0])
            if label in classes:
                return
            db.execute("UPDATE meta SET value = ? WHERE key = 'classes'", (json.dumps(classes + [label]),))
        self._item_counts = None  # the cached summary holds the class list

    def apply_many(self, decisions: list[tuple[int, str, str | None]]) -> list[dict]:
        known = set(self.classes)
        for _row, action, label in decisions:
            if action == "relabel" and label is not None and label not in known:
                self.add_class(label)
                known.add(check_new_label(label))
        return super().apply_many([(row, action, check_new_label(label) if action == "relabel" and
                                    isinstance(label, str) and label.strip() else label)
                                   for row, action, label in decisions])

    def labeled(self) -> pd.DataFrame:
        """``text, label`` of every labelled item (skipped ones left out), in the suggestions' order."""
        decisions = self.decisions()
        chosen = decisions[decisions["status"] == "relabeled"]
        return pd.DataFrame({"text": chosen["text"].tolist(), "label": chosen["label"].tolist()},
                            columns=["text", "label"])


def read_suggestions(path: str | os.PathLike) -> TextData:
    """Read a ``textshift suggest`` output (or any file with a ``text`` column; ``guess`` and ``probability``
    are used when present)."""
    data = read_texts(path)
    if "label" in data.frame:  # a labelled file is not a list of texts to label
        raise DataError(f"{Path(str(path)).name} has a 'label' column; expected the texts to label, as written by "
                        "`textshift suggest`. Pass the suggestions file")
    return data


def open_label_store(suggestions: TextData, *, store: str | os.PathLike | None = None,
                     classes: list[str] | None = None) -> LabelStore:
    """Open the edit log of ``suggestions``, creating it on first use with ``classes`` plus every guess."""
    path = Path(store) if store is not None else default_label_store_path(suggestions.fingerprint.path)
    if path.exists():
        return LabelStore.open(path, data=suggestions)
    frame = suggestions.frame
    n = len(frame)
    guesses = [str(g) if isinstance(g, str) and g else "" for g in frame.get("guess", pd.Series([""] * n))]
    probability = pd.to_numeric(frame.get("probability", pd.Series([np.nan] * n)), errors="coerce")
    every = list(dict.fromkeys([*(classes or []), *sorted(g for g in set(guesses) if g)]))
    items = pd.DataFrame({"row": np.arange(n), "text": frame["text"].to_numpy(), "predicted": guesses,
                          "predicted_probability": probability.to_numpy(),
                          "score": 1.0 - np.arange(n) / max(n, 1),  # the review's sort key: the suggested order
                          "issues": "", "suspicious": True, "duplicate_group": -1, "similar_rows": ""})
    return LabelStore.create(path, data=suggestions, items=items, classes=every)


def export_labels(store: LabelStore, target: str | os.PathLike, *, overwrite: bool = False,
                  protected: tuple = ()) -> dict:
    """Write the labelled texts as ``text,label`` (atomically); returns ``{"output", "rows", "classes"}``."""
    from textshift.outputs import OutputKind, check_output

    target = Path(target).expanduser()
    for path in (store.path, *protected):
        if same_file(target, path):
            raise OutputExistsError(f"{target} is the suggestions file or its edit log; expected a new file. "
                                    "Choose another name such as labelled.csv")
    texts = set(store.decisions()["text"])
    kind = OutputKind("an export of these labels", folder=False, owns=lambda p: _is_label_export(p, texts))
    check_output(target, kind, overwrite=overwrite, option="--export")
    labeled = store.labeled()
    if labeled.empty:
        raise DataError("nothing is labelled yet; expected at least one labelled text. Label some texts first")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_frame(labeled, target)
    return {"output": str(target), "rows": len(labeled), "classes": sorted(set(labeled["label"]))}


def _is_label_export(path: Path, texts: set) -> bool:
    """An earlier export of this labelling: a ``text,label`` file whose texts all come from the suggestions (a
    user's own labelled file is never replaced)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if list(frame.columns) != ["text", "label"]:
        return False
    return set(frame["text"]) <= texts


def create_label_app(store: LabelStore, suggestions: TextData, *, export_dir: str | os.PathLike | None = None,
                     token: str | None = None, loopback_only: bool = True):
    """The labelling app: the page, its items, decisions, undo and export (guarded like the review app)."""
    from textshift.review.server import guarded_app

    app = guarded_app(title="textshift label", page="label.html", token=token, loopback_only=loopback_only,
                      server="label", saved="Labels", log=logger)
    export_folder = Path(export_dir) if export_dir is not None else Path(str(suggestions.fingerprint.path)).parent
    _add_label_error_handlers(app)
    _add_label_routes(app, store, suggestions, export_folder)
    return app


def _add_label_error_handlers(app) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(TextshiftError)
    async def user_error(_request: Request, exc: TextshiftError):
        return JSONResponse({"error": str(exc)}, status_code=409 if isinstance(exc, OutputExistsError) else 400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query"))
        return JSONResponse({"error": f"bad request: {where or 'body'}: {first.get('msg', 'invalid')}"},
                            status_code=400)


def _add_label_routes(app, store: LabelStore, suggestions: TextData, export_folder: Path) -> None:
    """The summary, the items with the reason each was suggested, decisions, undo and export."""
    from fastapi import Body, Query

    from textshift.review.export import safe_export_path
    from textshift.review.server import MAX_ROW

    reasons = suggestions.frame["reason"].astype(str).tolist() if "reason" in suggestions.frame else None

    def summary() -> dict:
        counts = store.summary()
        return {"items": counts["items"], "decided": counts["decided"], "by_status": counts["by_status"],
                "classes": counts["classes"], "can_undo": counts["can_undo"], "data": counts["data"],
                "export": {"folder": str(export_folder), "suggested_name": "labelled.csv"}}

    @app.get("/api/summary")
    def get_summary():
        return summary()

    @app.get("/api/items")
    def items(offset: int = Query(0, ge=0, le=MAX_ROW), limit: int = Query(500, ge=1, le=500)):
        total, page = store.query(view="all", offset=offset, limit=limit)
        for item in page:
            item["reason"] = reasons[item["row"]] if reasons and item["row"] < len(reasons) else None
        return {"total": total, "offset": offset, "items": page}

    @app.post("/api/edits")
    def edit(row: int = Body(..., strict=True, ge=0, le=MAX_ROW), action: str = Body(..., strict=True),
             label: str | None = Body(None, strict=True)):
        if action not in ("relabel", "ambiguous"):
            raise ConfigError(f"action must be 'relabel' (label it) or 'ambiguous' (skip it); got {shown(action)}")
        result = store.apply(row, action, label=label)  # committed before we answer
        return {"item": result, "summary": summary()}

    @app.post("/api/undo")
    def undo(_body: dict | None = Body(None)):
        return {"items": store.undo(), "summary": summary()}

    @app.post("/api/export")
    def export(name: str = Body(..., strict=True), overwrite: bool = Body(False, strict=True)):
        target = safe_export_path(export_folder, name)
        return export_labels(store, target, overwrite=overwrite, protected=(Path(str(suggestions.fingerprint.path)),))


def start_labelling(suggestions: str | os.PathLike, *, classes: list[str] | None = None,
                    store: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 0,
                    export_dir: str | os.PathLike | None = None, token: str | None = None,
                    background: bool = True):
    """Start the labelling page for a suggestions file; returns the :class:`ReviewServer` (``.url``, ``.stop()``)."""
    from textshift.review.server import check_host, check_port, check_token, serve

    check_host(host)
    check_port(port)
    check_token(token)
    data = read_suggestions(suggestions)
    label_store = open_label_store(data, store=store, classes=classes)
    return serve(label_store, partial(create_label_app, label_store, data, export_dir=export_dir), host=host,
                 port=port, token=token, background=background)

