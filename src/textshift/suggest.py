"""Choose which target texts to label next, and the label-retrain loop built on that choice.

:func:`suggest` ranks a pool of unlabelled texts with a trained classifier and returns the next batch to label
(the ``textshift suggest`` command). Strategies (:data:`STRATEGIES`):

* ``random`` — a seeded random sample (the baseline every other strategy must beat);
* ``margin`` — the smallest gap between the model's two most likely classes;
* ``entropy`` — the flattest predicted distribution;
* ``kmeans`` — diverse and uncertain: the ``10 * n`` most uncertain texts are clustered into ``n`` clusters
  on the model's embeddings (k-means weighted by ``1 - margin``, Zhdanov 2019) and the text nearest each
  centre is taken, so a batch is not fifty near-copies of one confusing text;
* ``coverage`` — the cold start, for zero target labels: k-means with ``n`` clusters on the whole pool, each
  text weighted by how unsure the source model is, and the text nearest each centre;
* ``auto`` (default) — ``coverage`` while nothing is labelled, ``kmeans`` afterwards.

Whatever the strategy, a batch never holds two copies of one text, nor two near-duplicates (the same words up
to :data:`NEAR_DUPLICATE_JACCARD`), nor a text already labelled.

The model's head inputs and logits for the pool are computed once in chunks and cached by the pool's texts and
the model's weights (:func:`pool_outputs`), so ranking a 100,000-text pool again takes seconds.

:func:`label_loop` runs the whole cycle for notebooks and the benchmark: choose, ask an oracle, retrain with
``finetune`` (or ``scratch``), score, repeat.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import TextData, check_label_spelling
from textshift.errors import ConfigError, DataError
from textshift.files import replace_file

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "random", "margin", "entropy", "kmeans", "coverage")
DEFAULT_STRATEGY = "auto"
NEAR_DUPLICATE_JACCARD = 0.85  # share of distinct words two texts have in common to count as near-duplicates
CANDIDATES_PER_PICK = 10  # kmeans clusters the 10*n most uncertain texts (Zhdanov 2019 uses beta = 10)
CHUNK_ROWS = 2048  # texts per forward chunk: bounds the activations held at once
FULL_KMEANS_ROWS = 5000  # above this, coverage clusters with mini-batch k-means (100,000 texts in seconds)
SUGGESTION_COLUMNS = ["rank", "row", "text", "guess", "probability", "margin", "entropy", "reason"]


def default_cache_dir() -> Path:
    """Where pool outputs are cached: ``$TEXTSHIFT_CACHE/suggest`` or ``~/.cache/textshift/suggest``."""
    root = os.environ.get("TEXTSHIFT_CACHE")
    return Path(root) / "suggest" if root else Path.home() / ".cache" / "textshift" / "suggest"


@dataclass
class Suggestions:
    """What :func:`suggest` chose.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per chosen text, best first: ``rank, row`` (0-based row of the pool), ``text``, ``guess`` (the
        model's class), ``probability`` (of the guess), ``margin``, ``entropy``, ``reason``.
    strategy : str
        The strategy used (``auto`` resolved to ``coverage`` or ``kmeans``).
    pool_rows, labeled_rows, candidates, duplicates_skipped : int
        Rows of the pool, pool rows already labelled, distinct unlabelled texts ranked, and texts passed over
        because a copy or near-copy was already in the batch or labelled.
    seconds : dict
        ``outputs`` (model forward passes; ~0 when cached) and ``ranking``.
    """

    table: pd.DataFrame
    strategy: str
    pool_rows: int
    labeled_rows: int
    candidates: int
    duplicates_skipped: int
    seconds: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"strategy": self.strategy, "chosen": len(self.table), "pool_rows": self.pool_rows,
                "labeled_rows": self.labeled_rows, "candidates": self.candidates,
                "duplicates_skipped": self.duplicates_skipped,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().casefold()


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text))


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}. "
                          f"Pass --strategy {DEFAULT_STRATEGY}")


# ---------------------------------------------------------------------------------------------------- outputs
def pool_outputs(classifier, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
                 cache_dir: str | os.PathLike | None = None, progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The model's head inputs (embeddings) and logits for every text, computed in chunks and cached.

    Returns ``(features, logits)`` of shapes ``(n_texts, hidden)`` and ``(n_texts, n_labels)``, float32. The
    logits are the head's linear layer applied to the features (one forward pass gives both). The cache file
    is named by the sha256 of the texts, the model's weights and ``max_length`` (default: the model's own);
    ``cache_dir=False``-like ``None`` uses :func:`default_cache_dir`.
    """
    from safetensors.numpy import load_file, save_file

    from textshift.model import head_linear, model_digest

    max_length = classifier.max_length if max_length is None else max_length
    digest = hashlib.sha256(f"{model_digest(classifier)}|{max_length}|".encode())
    for text in texts:
        digest.update(str(text).encode("utf-8", "surrogatepass") + b"\x1f")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{digest.hexdigest()[:40]}.safetensors"
    if path.exists():
        try:
            stored = load_file(path)
            if stored["features"].shape[0] == len(texts):
                return stored["features"], stored["logits"]
        except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
            logger.warning("ignoring the unreadable cache file %s", path)
    linear = head_linear(classifier.model)
    weight = linear.weight.detach().float().cpu().numpy()
    bias = linear.bias.detach().float().cpu().numpy() if linear.bias is not None else 0.0
    features = None
    for start in range(0, len(texts), CHUNK_ROWS):
        chunk = classifier.features(texts[start:start + CHUNK_ROWS], batch_size=batch_size, max_length=max_length)
        if features is None:
            features = np.zeros((len(texts), chunk.shape[1]), dtype=np.float32)
        features[start:start + len(chunk)] = chunk
        if progress is not None:
            progress(min(start + CHUNK_ROWS, len(texts)), len(texts))
    logits = (features @ weight.T + bias).astype(np.float32)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_file({"features": features, "logits": logits}, str(tmp))
        replace_file(tmp, path)
    except OSError as exc:  # a read-only cache folder only costs the next run the forward passes
        logger.warning("could not cache the pool's outputs in %s: %s", folder, exc)
    return features, logits


# ---------------------------------------------------------------------------------------------------- ranking
def uncertainty(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(margin, entropy)`` of each row of class probabilities: the top-two gap, and entropy in nats."""
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities)), np.zeros(len(probabilities))
    top2 = np.partition(probabilities, -2, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, None))).sum(axis=1)
    return margin, entropy


def _kmeans_representatives(vectors: np.ndarray, weights: np.ndarray, k: int, seed: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For k weighted clusters: the position nearest each centre, the cluster's size and total weight,
    clusters ordered by total weight (heaviest first)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    k = min(k, len(vectors))
    if len(vectors) > FULL_KMEANS_ROWS:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=3)
    # one thread: OpenMP workers spinning on a busy 2-core machine made 400 texts take 2.9 s instead of 0.03 s
    with threadpool_limits(limits=1):
        assignment = model.fit_predict(vectors, sample_weight=weights)
    centres = model.cluster_centers_
    nearest = np.full(k, -1)
    best = np.full(k, np.inf)
    for start in range(0, len(vectors), 8192):  # distances in chunks: memory stays bounded on big pools
        block = vectors[start:start + 8192]
        labels = assignment[start:start + 8192]
        distance = ((block - centres[labels]) ** 2).sum(axis=1)
        for cluster in np.unique(labels):
            members = np.flatnonzero(labels == cluster)
            i = members[np.argmin(distance[members])]
            if distance[i] < best[cluster]:
                best[cluster], nearest[cluster] = distance[i], start + i
    sizes = np.bincount(assignment, minlength=k)
    mass = np.bincount(assignment, weights=weights, minlength=k)
    order = [c for c in np.argsort(-mass, kind="stable") if nearest[c] >= 0]
    return nearest[order], sizes[order], mass[order]


def _rank(strategy: str, features: np.ndarray, probabilities: np.ndarray, n: int, seed: int,
          labeled_features: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """Candidate positions best first, each with why it was picked (a text for the first picks)."""
    margin, entropy = uncertainty(probabilities)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        order = rng.permutation(len(features))
        return order, ["random sample"] * len(order)
    if strategy == "margin":
        order = np.lexsort((rng.random(len(margin)), margin))
        return order, [f"small margin {margin[i]:.3f} between the two likeliest classes" for i in order]
    if strategy == "entropy":
        order = np.lexsort((rng.random(len(entropy)), -entropy))
        return order, [f"high entropy {entropy[i]:.3f} of the predicted classes" for i in order]
    vectors = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    if strategy == "kmeans":
        weights = np.clip(1.0 - margin, 1e-3, None)
        if labeled_features is not None and len(labeled_features):
            # texts close to ones already labelled teach the model less: weight them down
            known = labeled_features / np.maximum(np.linalg.norm(labeled_features, axis=1, keepdims=True), 1e-12)
            closest = np.concatenate([(vectors[s:s + 8192] @ known.T).max(axis=1)
                                      for s in range(0, len(vectors), 8192)])
            weights = weights * np.clip(1.0 - closest, 0.05, 1.0)
        shortlist = np.lexsort((rng.random(len(weights)), -weights))[:max(n * CANDIDATES_PER_PICK, n)]
        picked, sizes, _ = _kmeans_representatives(vectors[shortlist], weights[shortlist], n, seed)
        head = shortlist[picked]
        reasons = {int(i): f"nearest the centre of uncertain cluster {c + 1} of {len(head)} ({sizes[c]} texts); "
                           f"margin {margin[i]:.3f}" for c, i in enumerate(head)}
    else:  # coverage: the cold start
        spread = entropy / max(float(entropy.max()), 1e-12)
        weights = 0.5 + 0.5 * spread  # coverage first; the source model's doubt breaks ties
        picked, sizes, _ = _kmeans_representatives(vectors, weights, n, seed)
        head = picked
        reasons = {int(i): f"represents cluster {c + 1} of {len(head)} of the pool ({sizes[c]} texts); source "
                           f"model entropy {entropy[i]:.3f}" for c, i in enumerate(head)}
    by_margin = np.lexsort((rng.random(len(margin)), margin))
    rest = by_margin[~np.isin(by_margin, head)]
    order = np.concatenate([head, rest]).astype(int)
    return order, [reasons.get(int(i), f"filler: small margin {margin[i]:.3f}") for i in order]


# ---------------------------------------------------------------------------------------------------- suggest
def _check_labeled(pool: TextData, labeled: TextData | None, classes: list[str], allow_new_labels: bool
                   ) -> tuple[set[str], list[int]]:
    """Normalised labelled texts and the pool rows they cover; one-line errors for the listed mistakes."""
    if labeled is None:
        return set(), []
    name = Path(str(labeled.fingerprint.path)).name
    by_text: dict[str, str] = {}
    for text, label in zip(labeled.texts, labeled.labels, strict=True):
        key = _normalise(text)
        if by_text.setdefault(key, label) != label:
            raise DataError(f"{name} labels the text {text[:60]!r} both {by_text[key]!r} and {label!r}; expected "
                            "one label per text. Keep one of the two rows")
    pool_keys: dict[str, list[int]] = {}
    for i, text in enumerate(pool.texts):
        pool_keys.setdefault(_normalise(text), []).append(i)
    missing = [text for text in labeled.texts if _normalise(text) not in pool_keys]
    if missing:
        raise DataError(f"{len(missing)} labelled text(s) of {name} are not in the pool (first: {missing[0][:60]!r}); "
                        "expected labelled rows taken from POOL. Add them to the pool, or drop them from "
                        "--labeled")
    check_label_spelling(labeled, classes)
    unknown = sorted(set(labeled.labels) - set(classes))
    if unknown and not allow_new_labels:
        raise DataError(f"{len(unknown)} label(s) of {name} are unknown to the model ({', '.join(unknown[:4])}); "
                        f"expected the model's classes ({', '.join(classes[:4])}…). Pass --new-labels to accept "
                        "them, or retrain on them first with `textshift transfer MODEL LABELED -o NEW_MODEL`")
    rows = sorted(i for key in by_text for i in pool_keys[key])
    return set(by_text), rows


def suggest(model, pool: TextData, *, n: int = 50, strategy: str = DEFAULT_STRATEGY,
            labeled: TextData | None = None, seed: int = 0, batch_size: int = 64, max_length: int | None = None,
            cache_dir: str | os.PathLike | None = None, allow_new_labels: bool = False,
            progress: Callable[[int, int], None] | None = None) -> Suggestions:
    """Choose the next ``n`` texts of ``pool`` to label.

    Parameters
    ----------
    model : Classifier or path
        The current model (the source model at the cold start).
    pool : TextData
        Unlabelled target texts (a label column, if any, is ignored).
    n : int
        Batch size, at least 1 and at most the number of distinct unlabelled texts.
    strategy : str
        One of :data:`STRATEGIES`.
    labeled : TextData, optional
        Rows of the pool labelled already: excluded from the batch, and ``kmeans`` weights texts close to them
        down. Their texts must be in the pool; their labels must be the model's unless ``allow_new_labels``.
    seed : int
        Same seed, same pool, same model: same batch.
    cache_dir : path, optional
        Cache of the pool's model outputs (default :func:`default_cache_dir`).

    Example
    -------
    >>> from textshift.data import read_texts
    >>> chosen = suggest("news-model", read_texts("bills.csv"), n=50)   # doctest: +SKIP
    >>> chosen.table[["text", "guess", "probability", "reason"]].head()  # doctest: +SKIP
    """
    from textshift.model import Classifier, labels_from, softmax

    check_strategy(strategy)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"-n must be a whole number of at least 1; got {n!r}. Pass -n 50")
    if pool is None or len(pool) == 0:
        raise DataError("the pool is empty; expected at least one text to choose from. Pass a file with rows")
    classifier = model if isinstance(model, Classifier) else Classifier.load(model)
    labeled_keys, labeled_rows = _check_labeled(pool, labeled, classifier.labels, allow_new_labels)
    texts = pool.texts
    first_of: dict[str, int] = {}
    for i, text in enumerate(texts):
        first_of.setdefault(_normalise(text), i)
    candidates = np.array(sorted(i for key, i in first_of.items() if key not in labeled_keys), dtype=int)
    if len(candidates) == 0:
        raise DataError(f"every text of the pool ({len(pool):,} rows) is labelled already; expected unlabelled "
                        "rows to choose from. Add new texts to the pool")
    if n > len(candidates):
        copies = len(pool) - len(labeled_rows) - len(candidates)
        note = f" ({copies:,} repeated texts counted once)" if copies else ""
        raise ConfigError(f"-n {n} is more than the {len(candidates):,} unlabelled distinct texts of the pool{note}; "
                          f"expected at most {len(candidates):,}. Pass -n {len(candidates)}")
    resolved = ("coverage" if not labeled_keys else "kmeans") if strategy == "auto" else strategy
    started = time.perf_counter()
    features, logits = pool_outputs(classifier, texts, batch_size=batch_size, max_length=max_length,
                                    cache_dir=cache_dir, progress=progress)
    seconds = {"outputs": time.perf_counter() - started}
    started = time.perf_counter()
    probabilities = softmax(logits[candidates])
    labeled_features = features[labeled_rows] if labeled_rows else None
    order, reasons = _rank(resolved, features[candidates], probabilities, n, seed, labeled_features)
    chosen, why, skipped = _without_duplicates(order, reasons, [texts[i] for i in candidates], n,
                                               [labeled.texts[i] for i in range(len(labeled))] if labeled else [])
    margin, entropy = uncertainty(probabilities[chosen])
    table = pd.DataFrame({"rank": np.arange(1, len(chosen) + 1), "row": candidates[chosen],
                          "text": [texts[candidates[i]] for i in chosen],
                          "guess": labels_from(probabilities[chosen], classifier.labels),
                          "probability": probabilities[chosen].max(axis=1).round(4), "margin": margin.round(4),
                          "entropy": entropy.round(4), "reason": why}, columns=SUGGESTION_COLUMNS)
    seconds["ranking"] = time.perf_counter() - started
    return Suggestions(table=table, strategy=resolved, pool_rows=len(pool), labeled_rows=len(labeled_rows),
                       candidates=len(candidates), duplicates_skipped=skipped, seconds=seconds)


def _without_duplicates(order: np.ndarray, reasons: list[str], texts: list[str], n: int, labeled_texts: list[str]
                        ) -> tuple[list[int], list[str], int]:
    """The first ``n`` of ``order`` that are no near-copy of a text taken before or of a labelled text."""
    taken: list[frozenset[str]] = [_words(_normalise(t)) for t in labeled_texts]
    chosen, why, skipped = [], [], 0
    for position, reason in zip(order, reasons, strict=True):
        words = _words(_normalise(texts[position]))
        if any(_jaccard(words, other) >= NEAR_DUPLICATE_JACCARD for other in taken):
            skipped += 1
            continue
        taken.append(words)
        chosen.append(int(position))
        why.append(reason)
        if len(chosen) == n:
            break
    if len(chosen) < n:  # only near-copies left: take them rather than return a short batch
        rest = [int(p) for p in order if int(p) not in set(chosen)][:n - len(chosen)]
        chosen += rest
        why += ["near-duplicate of a chosen text (nothing else left)"] * len(rest)
    return chosen, why, skipped


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


# ---------------------------------------------------------------------------------------------------- the loop
@dataclass
class LoopRound:
    """One round of :func:`label_loop`: the model retrained on ``labels`` rows and its test scores."""

    labels: int
    strategy: str
    model: str
    seed: int
    accuracy: float | None
    macro_f1: float | None
    seconds: float
    chosen: list[int]

    def to_dict(self) -> dict:
        return {"labels": self.labels, "strategy": self.strategy, "model": self.model, "seed": self.seed,
                "accuracy": self.accuracy, "macro_f1": self.macro_f1, "seconds": round(self.seconds, 2),
                "chosen": self.chosen}


def label_loop(source, pool: TextData, oracle: Callable[[list[str]], list[str]] | Sequence[str], *,
               rounds: Sequence[int], strategy: str = DEFAULT_STRATEGY, model: str = "finetune", seed: int = 0,
               test: TextData | None = None, warm_start: int = 0, train_config=None,
               labeled_rows: Sequence[int] = (), on_round: Callable[[LoopRound], None] | None = None,
               cache_dir: str | os.PathLike | None = None) -> list[LoopRound]:
    """Label round by round: choose with ``strategy``, ask ``oracle``, retrain from ``source``, score on ``test``.

    Parameters
    ----------
    source : Classifier or path
        The source model; every round retrains from it (``finetune``) or from its backbone (``scratch``) on all
        labels so far.
    pool : TextData
        The unlabelled texts.
    oracle : callable or sequence of str
        ``oracle(texts) -> labels``, or the pool's hidden labels in pool order (revealed only when chosen).
    rounds : sequence of int
        Label counts after each round, increasing (e.g. ``range(50, 501, 50)``).
    warm_start : int
        Label this many random rows first (recorded as strategy ``random``); 0 is the cold start.
    labeled_rows : sequence of int
        Pool rows labelled by an earlier, interrupted run, in the order chosen: the loop retrains on them and
        continues with the rounds above their count.
    on_round : callable, optional
        Called with each :class:`LoopRound` as soon as it is done (to save progress).

    Returns
    -------
    list of LoopRound
        The rounds run by this call.
    """
    from textshift.model import Classifier
    from textshift.training import TrainConfig
    from textshift.transfer import TransferConfig

    rounds = _check_loop_settings(strategy, model, rounds, pool)
    source = source if isinstance(source, Classifier) else Classifier.load(source)
    hidden = None if callable(oracle) else [str(label) for label in oracle]
    if hidden is not None and len(hidden) != len(pool):
        raise DataError(f"got {len(hidden)} hidden labels for a pool of {len(pool)} rows; expected one per row")
    texts = pool.texts
    config = TransferConfig(strategy=model, train=train_config or TrainConfig(seed=seed))
    rows: list[int] = [int(r) for r in labeled_rows]

    def ask(new_rows: list[int]) -> list[str]:
        if hidden is not None:
            return [hidden[i] for i in new_rows]
        answers = [str(label) for label in oracle([texts[i] for i in new_rows])]
        if len(answers) != len(new_rows):
            raise DataError(f"the oracle answered {len(answers)} labels for {len(new_rows)} texts; expected one "
                            "label per text")
        return answers

    labels: list[str] = ask(rows) if rows else []
    current = source
    if rows:
        current, _ = _retrain(current, source, texts, rows, labels, config=config, test=test)
    done: list[LoopRound] = []
    plan = ([("random", warm_start)] if warm_start > len(rows) else []) + \
        [(strategy, goal) for goal in rounds if goal > max(len(rows), warm_start)]
    for use, goal in plan:
        started = time.perf_counter()
        if use == "random" and goal == warm_start and len(rows) < warm_start:
            new = _random_new_rows(texts, rows, goal - len(rows), seed=seed)
        else:
            labeled = (TextData.from_lists([texts[i] for i in rows], labels, name="<labelled so far>")
                       if rows else None)
            chosen = suggest(current, pool, n=goal - len(rows), strategy=use, labeled=labeled, seed=seed,
                             cache_dir=cache_dir, allow_new_labels=True, max_length=config.train.max_length)
            new = chosen.table["row"].astype(int).tolist()
        rows += new
        labels += ask(new)
        current, scores = _retrain(current, source, texts, rows, labels, config=config, test=test)
        record = LoopRound(labels=len(rows), strategy=use, model=model, seed=seed, accuracy=scores["accuracy"],
                           macro_f1=scores["macro_f1"], seconds=time.perf_counter() - started, chosen=new)
        done.append(record)
        if on_round is not None:
            on_round(record)
    return done


def _check_loop_settings(strategy: str, model: str, rounds: Sequence[int], pool: TextData) -> list[int]:
    """The rounds of :func:`label_loop` as a list, once the strategy, model and rounds are checked."""
    check_strategy(strategy)
    if model not in ("finetune", "scratch"):
        raise ConfigError(f"model must be 'finetune' or 'scratch'; got {model!r}")
    rounds = [int(r) for r in rounds]
    if not rounds or any(b <= a for a, b in itertools.pairwise(rounds)) or rounds[0] < 1:
        raise ConfigError(f"rounds must be increasing label counts of at least 1; got {rounds}")
    if rounds[-1] > len(pool):
        raise ConfigError(f"the last round asks for {rounds[-1]} labels but the pool has {len(pool)} rows; "
                          "expected at most the pool's size")
    return rounds


def _random_new_rows(texts: list[str], rows: list[int], n: int, *, seed: int) -> list[int]:
    """``n`` seeded random rows not among ``rows``: the first row of each text, duplicates of labelled texts
    left out."""
    taken = {_normalise(texts[i]) for i in rows}
    firsts = {}
    for i, text in enumerate(texts):
        firsts.setdefault(_normalise(text), i)
    left = np.array(sorted(i for key, i in firsts.items() if key not in taken))
    return [int(i) for i in np.random.default_rng(seed).permutation(left)[:n]]


def _retrain(current, source, texts: list[str], rows: list[int], labels: list[str], *, config,
             test: TextData | None) -> tuple[object, dict]:
    """``source`` transferred to the labelled ``rows`` and its test scores; ``current`` unscored while the
    labels hold fewer than 2 classes (nothing to train yet: keep choosing with the model we have)."""
    from textshift.training import score
    from textshift.transfer import transfer

    if len(set(labels)) < 2:
        return current, {"accuracy": None, "macro_f1": None}
    target = TextData.from_lists([texts[i] for i in rows], labels, name="<label loop>")
    trained, _ = transfer(source, target, config=config)
    scores = score(test.labels, trained.predict(test.texts, max_length=config.train.max_length)
                   ) if test is not None else {}
    return trained, {"accuracy": scores.get("accuracy"), "macro_f1": scores.get("macro_f1")}
