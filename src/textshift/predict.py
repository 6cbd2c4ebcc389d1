"""Predictions: for a list of texts, or streamed from a file of any size to a CSV.

Example
-------
>>> from textshift.model import Classifier
>>> from textshift.predict import predict_texts
>>> clf = Classifier.load("news-model")                        # doctest: +SKIP
>>> predict_texts(clf, ["Senate passes farm bill"], top_k=2)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import detect_format, iter_text_chunks, same_file
from textshift.errors import ConfigError, OutputExistsError, TextshiftError
from textshift.locks import writes
from textshift.model import Classifier, model_digest
from textshift.outputs import PREDICTIONS, check_output
from textshift.validation import check_data_path

logger = logging.getLogger(__name__)


def predictions_frame(labels: list[str], probs: np.ndarray, *, top_k: int = 1) -> pd.DataFrame:
    """Turn a probability matrix into columns ``label``, ``probability`` and, for ``top_k`` > 1,
    ``label_2``/``probability_2``… up to ``top_k``."""
    _check_top_k(top_k)
    top_k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    names = np.asarray(labels, dtype=object)
    columns: dict[str, object] = {}
    for rank in range(top_k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        columns[f"label{suffix}"] = names[order[:, rank]]
        columns[f"probability{suffix}"] = np.round(np.take_along_axis(probs, order[:, rank:rank + 1], 1)[:, 0], 6)
    return pd.DataFrame(columns)


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ConfigError(f"top_k must be a whole number >= 1; got {top_k!r}. Pass e.g. top_k=3")


def predict_texts(classifier: Classifier, texts: list[str], *, top_k: int = 1, batch_size: int = 64,
                  max_length: int | None = None) -> pd.DataFrame:
    """Predict a list of texts; one row per text with ``label``/``probability`` (and top-k columns).

    ``texts`` is a list (or tuple, pandas Series, numpy array, iterable) of strings; a bare string, a non-string
    item, ``top_k`` or ``batch_size`` below 1 are refused before any prediction. No texts give an empty frame.
    """
    _check_top_k(top_k)
    max_length = max_length or classifier.meta.settings.get("max_length", 128)
    probs = classifier.predict_proba(texts, batch_size=batch_size, max_length=max_length)
    return predictions_frame(classifier.labels, probs, top_k=top_k)


@dataclass
class PredictSummary:
    """What :func:`predict_file` wrote."""

    output: Path
    rows: int
    label_counts: dict[str, int]


def _partial_paths(output: Path) -> tuple[Path, Path]:
    """Where an unfinished prediction run keeps its rows and its progress (hidden, beside the output)."""
    return output.with_name(f".{output.name}.partial"), output.with_name(f".{output.name}.partial.json")


def _input_identity(data: str | os.PathLike) -> dict:
    try:
        stat = Path(data).stat()
    except OSError:  # embedded data, or a missing file (reported by the reader)
        return {"data": str(data)}
    return {"data": str(Path(data).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@writes("output")
def predict_file(classifier: Classifier, data: str | os.PathLike, output: str | os.PathLike, *,
                 text_column: str | None = None, top_k: int = 1, chunk_size: int = 4096, batch_size: int = 64,
                 keep_columns: bool = True, overwrite: bool = False, resume: bool = False,
                 on_chunk: Callable[[int], None] | None = None) -> PredictSummary:
    """Stream ``data`` through the model in chunks and write a CSV of predictions.

    Memory is bounded by ``chunk_size`` whatever the file size. Rows go to a hidden ``.NAME.partial`` file beside
    the output, made durable after every chunk together with a small progress record; the output appears (by
    rename) only when complete, so a crash never leaves a half-written file, and the input is never overwritten.
    If a run is interrupted, ``resume=True`` continues after the last durable chunk (same input, model and
    options). A bad-input error removes the partial files. ``on_chunk(rows_done)`` is called after each chunk.
    """
    data = check_data_path(data)
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise ConfigError(f"expected an output .csv path; got {output!r:.60}. Pass e.g. 'predictions.csv'")
    output = Path(output).expanduser()
    if same_file(data, output) or Path(str(data)).resolve() == output.resolve():
        raise OutputExistsError(f"output {output} is the input file; expected a different path. textshift never "
                                "overwrites its input: pass another -o")
    if detect_format(output) != "csv" or output.suffix.lower() != ".csv":
        raise ConfigError(f"predictions are written as CSV; got output {output.name}. Use a .csv path")
    check_output(output, PREDICTIONS, overwrite=overwrite, inputs=(data,))  # before any row is scored
    partial, progress = _partial_paths(output)
    identity = {**_input_identity(data), "model": model_digest(classifier), "labels": classifier.labels,
                "text_column": text_column, "top_k": top_k, "keep_columns": keep_columns}
    state = {"rows": 0, "bytes": 0, "counts": {}}
    if progress.exists() and partial.exists():
        try:
            saved = json.loads(progress.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            saved = None
        if not resume and not overwrite:
            rows_done = saved.get("rows", "?") if isinstance(saved, dict) else "?"
            raise OutputExistsError(f"an interrupted run left {partial.name} ({rows_done} rows done) beside "
                                    f"{output.name}; expected no unfinished run. Pass --resume to continue it or "
                                    "--overwrite to start again")
        if resume:
            if not isinstance(saved, dict) or saved.get("identity") != json.loads(json.dumps(identity)):
                raise ConfigError(f"the unfinished run in {partial.name} was for other input, model or options; "
                                  "expected the same ones to resume. Pass --overwrite to start again")
            state = saved
    elif resume:
        logger.info("nothing to resume for %s; starting from the first row", output)
    output.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = dict(state["counts"])
    rows = skip = int(state["rows"])
    finished = False
    try:
        with open(partial, "r+b" if rows else "wb") as raw:
            raw.truncate(int(state["bytes"]))
        with open(partial, "a", newline="", encoding="utf-8") as handle:
            header_written = rows > 0
            for chunk in iter_text_chunks(data, text_column=text_column, chunk_size=chunk_size):
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk.iloc[skip:], 0
                preds = predict_texts(classifier, chunk["text"].tolist(), top_k=top_k, batch_size=batch_size)
                preds.index = chunk.index
                kept = chunk if keep_columns else chunk[["text"]]
                # An input column named like an output column (row, probability, label_2, ...) is kept as input_NAME.
                kept = kept.rename(columns={c: f"input_{c}" for c in kept.columns
                                            if c == "row" or c in preds.columns})
                frame = pd.concat([kept, preds], axis=1)
                frame.insert(0, "row", chunk.index)
                frame.to_csv(handle, index=False, header=not header_written, quoting=csv.QUOTE_MINIMAL)
                header_written = True
                for label, n in preds["label"].value_counts().items():
                    counts[label] = counts.get(label, 0) + int(n)
                rows += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
                _write_progress(progress, {"identity": identity, "rows": rows, "bytes": handle.tell(),
                                           "counts": counts})
                if on_chunk:
                    on_chunk(rows)
        os.replace(partial, output)
        progress.unlink(missing_ok=True)
        finished = True
    except TextshiftError:
        partial.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        raise
    finally:
        if finished:
            partial.unlink(missing_ok=True)
    return PredictSummary(output, rows, dict(sorted(counts.items(), key=lambda kv: -kv[1])))


def _write_progress(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, default=str), encoding="utf-8")
    os.replace(tmp, path)
