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
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import detect_format, iter_text_chunks, same_file
from textshift.errors import ConfigError, OutputExistsError
from textshift.model import Classifier


def predictions_frame(labels: list[str], probs: np.ndarray, *, top_k: int = 1) -> pd.DataFrame:
    """Turn a probability matrix into columns ``label``, ``probability`` and, for ``top_k`` > 1,
    ``label_2``/``probability_2``… up to ``top_k``."""
    if top_k < 1:
        raise ConfigError(f"top_k must be >= 1; got {top_k}")
    top_k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    names = np.asarray(labels, dtype=object)
    columns: dict[str, object] = {}
    for rank in range(top_k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        columns[f"label{suffix}"] = names[order[:, rank]]
        columns[f"probability{suffix}"] = np.round(np.take_along_axis(probs, order[:, rank:rank + 1], 1)[:, 0], 6)
    return pd.DataFrame(columns)


def predict_texts(classifier: Classifier, texts: list[str], *, top_k: int = 1, batch_size: int = 64,
                  max_length: int | None = None) -> pd.DataFrame:
    """Predict a list of texts; one row per text with ``label``/``probability`` (and top-k columns)."""
    max_length = max_length or classifier.meta.settings.get("max_length", 128)
    probs = classifier.predict_proba(list(texts), batch_size=batch_size, max_length=max_length)
    return predictions_frame(classifier.labels, probs, top_k=top_k)


@dataclass
class PredictSummary:
    """What :func:`predict_file` wrote."""

    output: Path
    rows: int
    label_counts: dict[str, int]


def predict_file(classifier: Classifier, data: str | os.PathLike, output: str | os.PathLike, *,
                 text_column: str | None = None, top_k: int = 1, chunk_size: int = 4096, batch_size: int = 64,
                 keep_columns: bool = True, overwrite: bool = False,
                 on_chunk: Callable[[int], None] | None = None) -> PredictSummary:
    """Stream ``data`` through the model in chunks and write a CSV of predictions.

    Memory is bounded by ``chunk_size`` whatever the file size. The output is written beside its final path
    and renamed when complete, so a crash never leaves a half-written file; the input is never overwritten.
    ``on_chunk(rows_done)`` is called after each chunk (for progress bars).
    """
    output = Path(output)
    if same_file(data, output) or Path(str(data)).resolve() == output.resolve():
        raise OutputExistsError(f"output {output} is the input file; expected a different path. textshift never "
                                "overwrites its input: pass another -o")
    if detect_format(output) != "csv":
        raise ConfigError(f"predictions are written as CSV; got output {output.name}. Use a .csv path")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; expected a new file. Pass --overwrite or choose another path")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    counts: dict[str, int] = {}
    rows = 0
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            header_written = False
            for chunk in iter_text_chunks(data, text_column=text_column, chunk_size=chunk_size):
                preds = predict_texts(classifier, chunk["text"].tolist(), top_k=top_k, batch_size=batch_size)
                preds.index = chunk.index
                frame = pd.concat([chunk, preds], axis=1) if keep_columns else pd.concat([chunk[["text"]], preds],
                                                                                          axis=1)
                if "row" not in frame.columns:
                    frame.insert(0, "row", chunk.index)
                frame.to_csv(handle, index=False, header=not header_written, quoting=csv.QUOTE_MINIMAL)
                header_written = True
                for label, n in preds["label"].value_counts().items():
                    counts[label] = counts.get(label, 0) + int(n)
                rows += len(chunk)
                if on_chunk:
                    on_chunk(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return PredictSummary(output, rows, dict(sorted(counts.items(), key=lambda kv: -kv[1])))
