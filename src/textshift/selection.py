"""Choosing the recommended strategy from the sample alone, with the evidence for the choice.

``compare`` scores every candidate strategy on rows of each labelled sample that it did not train on (the test
rows are never looked at) and recommends one. Three ways to score (``CompareConfig.selection``):

``short`` (default)
    each candidate is fine-tuned for half the epochs of its full run on 75% of the sample (stratified) and
    scored on the other 25%: a real fine-tune of every candidate, so ``scratch`` is scored as what it becomes,
    at a fraction of the cost of training the candidates (BENCHMARKS.md §2, ``bench/selection_check.py``).
``holdout``
    the same split with each candidate's full schedule: the most faithful, at about the cost of training them.
``probe``
    every row held out once (4 folds), predicted by each candidate's *starting* model with only its head trained
    on frozen features. Seconds, but not comparable across strategies: the untrained encoder of ``scratch``
    scores far below what ``scratch`` reaches after fine-tuning (BENCHMARKS.md §2).

A comparison runs several seeds at each size, each with its own sample and its own held-out rows. The choice at
a size pools the held-out rows of all its seeds (:func:`pick_pooled`): one held-out quarter of a small sample is
a few dozen rows, too few to tell two candidates a few points apart, and the question asked is which strategy
is better at that size, not on one sample. Every seed of a size gets the pooled choice.

With ``short`` and ``holdout`` the highest score wins. The probe scores ``scratch`` far below what it becomes,
so there a strategy other than ``scratch`` is recommended only when it beats ``scratch`` in at least ``LEVEL``
of ``RESAMPLES`` bootstrap resamples of the held-out rows, else ``scratch``. Either way the evidence is stored
with the choice: each candidate's held-out score, the gap between the two best, and the share of paired
bootstrap resamples of the held-out rows (both candidates' predictions of the same resampled rows) in which the
chosen one wins.

>>> import numpy as np
>>> truth = ["a", "b"] * 10
>>> share_better(truth, truth, ["a"] * 20, seed=0) > 0.99   # always right against always "a"
True
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from textshift.data import TextData
from textshift.errors import DataError
from textshift.model import Classifier, labels_from
from textshift.training import TrainConfig

RULE = "evidence-v3"  # stored with each recommendation: a change of rule recomputes stored choices
SELECTIONS = ("short", "holdout", "probe")
DEFAULT_SELECTION = "short"
SHORT_EPOCHS = 0.5  # share of the full run's epochs that a short selection run trains
RESAMPLES = 1000
LEVEL = 0.9  # probe only: the share of resamples in which a transfer strategy must beat scratch
FOLDS = 4
REFERENCE = "scratch"


def share_better(truth: list[str], candidate: list[str], reference: list[str], *, seed: int,
                 resamples: int = RESAMPLES) -> float:
    """Share of bootstrap resamples of the rows in which ``candidate``'s macro-F1 beats ``reference``'s.

    Macro-F1 of a resample averages the F1 of the classes present in its true labels. Ties count as not better.
    """
    if not truth:
        return 0.0
    classes = {label: i for i, label in enumerate(sorted(set(truth) | set(candidate) | set(reference)))}
    t = np.array([classes[label] for label in truth])
    rows = np.random.default_rng(seed).integers(0, len(t), size=(resamples, len(t)))
    scores = [_macro_f1(t[rows], np.array([classes[label] for label in predicted])[rows], len(classes))
              for predicted in (candidate, reference)]
    return float(np.mean(scores[0] > scores[1]))


def _macro_f1(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of every row of ``true``/``predicted`` (resamples × rows of class ids), over each row's true
    classes."""
    resamples = true.shape[0]
    offsets = np.arange(resamples)[:, None] * n_classes

    def counts(ids: np.ndarray) -> np.ndarray:
        return np.bincount(ids.ravel(), minlength=resamples * n_classes).reshape(resamples, n_classes)

    hits = counts((offsets + true)[true == predicted])
    in_truth, in_predicted = counts(offsets + true), counts(offsets + predicted)
    f1 = 2 * hits / np.maximum(in_truth + in_predicted, 1)
    present = in_truth > 0
    return (f1 * present).sum(axis=1) / present.sum(axis=1)


def short_schedule(train: TrainConfig, rows: int) -> TrainConfig:
    """The settings of a ``short`` selection run: ``SHORT_EPOCHS`` of the epochs that the full run on ``rows``
    rows trains (at least one), everything else unchanged.

    >>> short_schedule(TrainConfig(), 100).epochs   # the full run on 100 rows trains 20 epochs
    10
    """
    return replace(train, epochs=max(1, math.ceil(train.epochs_for(rows) * SHORT_EPOCHS)))


def pick(candidates: list[str], scores: dict[str, float], predictions: dict[str, list[str]], truth: list[str], *,
         seed: int, selection: str = DEFAULT_SELECTION) -> tuple[str, dict]:
    """The recommended candidate and the evidence for it.

    Returns ``(choice, reason)``; ``reason`` holds ``rule``, ``selection``, ``scores`` (each candidate's held-out
    macro-F1), ``best`` (the highest, ties to the earlier candidate), ``against`` (the candidate it is weighed
    against: the runner-up, or ``scratch`` under the probe), ``gap`` (best's score minus against's),
    ``share_better`` (share of paired bootstrap resamples of the held-out rows in which best beats against) and
    ``held_out_rows``. The highest score wins, except under the ``probe`` selection (which scores ``scratch``
    below what it becomes) where a candidate other than ``scratch`` must beat it in at least ``LEVEL`` of the
    resamples.
    """
    best = max(candidates, key=lambda c: (scores[c], -candidates.index(c)))
    reason = {"rule": RULE, "selection": selection, "best": best, "held_out_rows": len(truth),
              "scores": {c: round(float(scores[c]), 4) for c in candidates}}
    others = sorted((c for c in candidates if c != best), key=lambda c: (-scores[c], candidates.index(c)))
    if not others:
        return best, reason
    guarded = selection == "probe" and best != REFERENCE and REFERENCE in candidates
    against = REFERENCE if guarded else others[0]
    share = share_better(truth, predictions[best], predictions[against], seed=seed)
    reason |= {"against": against, "gap": round(float(scores[best] - scores[against]), 4),
               "share_better": round(share, 3)}
    return (REFERENCE if guarded and share < LEVEL else best), reason


def pick_pooled(candidates: list[str], held_out: list[tuple[list[str], dict[str, list[str]]]], *,
                selection: str = DEFAULT_SELECTION) -> tuple[str, dict]:
    """The recommended candidate at one size, from the held-out rows of all its seeds pooled.

    ``held_out`` holds one ``(truth, predictions)`` pair per seed: the true labels of that seed's held-out rows
    and each candidate's predictions of them. The rows are concatenated, each candidate's score is its macro-F1
    on all of them, and :func:`pick` chooses; ``reason`` also holds ``seeds`` (how many were pooled).

    >>> truth = ["a", "b"] * 5
    >>> pick_pooled(["x", "y"], [(truth, {"x": truth, "y": ["a"] * 10})] * 2)[0]
    'x'
    """
    if not held_out:
        raise ValueError("pick_pooled needs the held-out rows of at least one seed")
    truth = [label for labels, _ in held_out for label in labels]
    predictions = {c: [p for _, predicted in held_out for p in predicted[c]] for c in candidates}
    ids = {label: i for i, label in enumerate(sorted(set(truth).union(*map(set, predictions.values()))))}
    true = np.array([[ids[label] for label in truth]])
    scores = {c: float(_macro_f1(true, np.array([[ids[p] for p in predictions[c]]]), len(ids))[0])
              if truth else 0.0 for c in candidates}
    chosen, reason = pick(candidates, scores, predictions, truth, seed=0, selection=selection)
    return chosen, reason | {"seeds": len(held_out)}


def describe(reason: dict, chosen: str) -> str:
    """One line of evidence for a choice: the held-out scores, their gap and the share of resamples won (empty
    when the reason holds none, e.g. a single candidate)."""
    if "against" not in reason:
        if chosen == reason.get("best") or "share_better" not in reason:
            return ""
        # stored under the first evidence rule (probe against scratch)
        return (f"'{reason['best']}' scored highest on the {reason['held_out_rows']} held-out rows but beat "
                f"'{chosen}' in only {reason['share_better']:.0%} of {RESAMPLES:,} resamples of them (needed: "
                f"{LEVEL:.0%}), so '{chosen}' is recommended")
    best, against, scores = reason["best"], reason["against"], reason["scores"]
    seeds = f" of {reason['seeds']} seeds" if reason.get("seeds", 1) > 1 else ""
    text = (f"'{best}' {scores[best]:.3f} vs '{against}' {scores[against]:.3f} on {reason['held_out_rows']} "
            f"held-out rows{seeds} ({reason.get('selection', 'probe')} selection): gap {reason['gap']:+.3f}, '{best}' "
            f"ahead in {reason['share_better']:.0%} of {RESAMPLES:,} resamples")
    if chosen != best:
        text += (f"; the probe scores '{chosen}' below what it becomes, so {LEVEL:.0%} was needed and "
                 f"'{chosen}' is recommended")
    return text


def probe(candidate: str, sample: TextData, seed: int, train, source: Classifier, *, folds: int = FOLDS
          ) -> tuple[list[str], float]:
    """Every row of ``sample`` predicted by the candidate's starting model with only its head trained, on frozen
    features of the other folds' rows: ``(predicted labels, seconds)``.

    The encoder is not trained, so the features are computed once; each fold then prepares the starting model
    from its own training rows (new classes' head rows start from their mean feature there, never from the
    held-out rows) and trains the head alone. A class missing from a fold's training rows cannot be predicted
    for its held-out rows, for every candidate alike.
    """
    from textshift.model import head_linear
    from textshift.training import stratified_folds, warm_up_head
    from textshift.transfer import TransferConfig, prepare_model

    started = time.perf_counter()
    # adapt and joint start from the fine-tuned source's head; their probe is finetune's.
    config = TransferConfig(strategy="finetune" if candidate in ("adapt", "joint") else candidate, train=train)
    class_ids = np.unique(sample.labels, return_inverse=True)[1]
    features = None  # the same for every fold: the starting models differ only in their heads
    predicted = [""] * len(sample)
    for fit_rows, held_rows in stratified_folds(class_ids, folds, seed):
        fit = sample.subset(fit_rows)
        try:
            model = prepare_model(source, fit, config)
        except DataError:  # e.g. finetune on a fold without any class the source knows: it cannot predict these
            continue  # rows (left "", counted wrong)
        if features is None:
            features = model.features(sample.texts, max_length=train.max_length)
        label_ids = np.array([model.label2id[label] for label in fit.labels])
        warm_up_head(model, features[fit_rows], label_ids, epochs=max(train.warmup_epochs, 10),
                     learning_rate=train.head_learning_rate, batch_size=train.batch_size, seed=seed)
        linear = head_linear(model.model)
        weight = linear.weight.detach().cpu().float().numpy()
        bias = linear.bias.detach().cpu().float().numpy() if linear.bias is not None else 0.0
        for row, label in zip(held_rows, labels_from(features[held_rows] @ weight.T + bias, model.labels),
                              strict=True):
            predicted[row] = label
    return predicted, time.perf_counter() - started
