"""Growing a classifier to new classes, step by step, without forgetting the old ones.

A model folder may hold a small class-balanced **rehearsal memory** of its own training examples
(``memory.jsonl``: one ``{"text": ..., "label": ...}`` object per line; its sha256 is recorded in
``textshift.json`` so a hand edit is detected). :func:`grow` adds the classes of new data to a classifier:

1. the head gets one row per new class, initialised from the mean head-input vector of that class's examples;
2. the model is fine-tuned on the new data plus the memory, with class-balanced loss weights so that the many
   new examples do not drown the few remembered ones, and after training the new classes' head rows are
   shrunk to the old rows' mean norm if they are longer (weight aligning), which removes what bias towards the
   new classes is left (``bias_correction="balanced+align"``; ``"balanced"`` or ``"align"`` alone, the balanced
   softmax ``"logit-adjust"`` with or without ``"+align"``, or ``"none"``);
3. the old model's outputs on the old classes are distilled into the new model (learning without forgetting;
   ``distill=False`` turns it off);
4. the memory is updated with examples of the new classes for the next step.

Progress is measured with an accuracy matrix: row *i* is the model after step *i*, column *j* its accuracy on the
classes added at step *j*; forgetting of step *j* is the best earlier accuracy on those classes minus the current
one (:func:`score_steps`, :func:`accuracy_matrix`, :func:`forgetting`).

Example (the training steps take minutes with the real encoder, so the test suite skips them)
-------
>>> import pandas as pd
>>> from textshift.data import TextData, read_labeled
>>> from textshift.grow import GrowConfig, Memory, grow
>>> from textshift.training import TrainConfig, train_classifier
>>> bills = read_labeled("embedded:bills-train").frame
>>> first = bills[bills.label.isin(["Health", "Defense", "Education"])]
>>> second = bills[bills.label.isin(["Energy", "Housing"])]
>>> step1 = TextData.from_lists(first.text.tolist(), first.label.tolist(), name="step1")
>>> classifier, _ = train_classifier(step1, config=TrainConfig(epochs=1))                             # doctest: +SKIP
>>> memory = Memory.sample(step1.texts, step1.labels, per_class=20, seed=0)
>>> step2 = TextData.from_lists(second.text.tolist(), second.label.tolist(), name="step2")
>>> result = grow(classifier, step2, memory=memory, config=GrowConfig(train=TrainConfig(epochs=1)))  # doctest: +SKIP
>>> result.classifier.labels                                                                          # doctest: +SKIP
['Defense', 'Education', 'Health', 'Energy', 'Housing']
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score

from textshift.data import TextData
from textshift.errors import ConfigError, DataError, ModelError
from textshift.memory import (
    DEFAULT_MEMORY_PER_CLASS,
    MEMORY_FILE,
    Memory,
    RehearsalMemoryError,
    attach_memory,
    read_memory,
    save_with_memory,
)
from textshift.model import Classifier, check_output_folder, head_linear, labels_from
from textshift.stats_head import (
    FeatureStats,
    FeatureStatsError,
    check_stats,
    compute_stats,
    encoder_fingerprint,
    fold_into_head,
    read_stats,
)
from textshift.training import (
    LossShaping,
    ProgressFn,
    TrainConfig,
    TrainResult,
    as_text_data,
    deepcopy_classifier,
    record_training,
    train,
)
from textshift.validation import check_settings, check_types

logger = logging.getLogger(__name__)

# The memory's names are part of this module's interface too (``from textshift.grow import Memory``).
__all__ = ["BIAS_CORRECTIONS", "DEFAULT_MEMORY_PER_CLASS", "FINETUNE_HINT", "HEADS", "MEMORY_FILE", "FeatureStats",
           "FeatureStatsError", "GrowConfig", "GrowError",
           "GrowReport", "GrowResult", "Memory", "RehearsalMemoryError", "StepScores", "accuracy_matrix",
           "attach_memory", "check_new_data", "class_steps", "forgetting", "grow", "grow_folder",
           "no_rehearsal_warning", "read_memory", "record_scores", "recorded_scores", "save_with_memory", "score_steps",
           "train_joint"]

BIAS_CORRECTIONS = ("balanced+align", "balanced", "align", "logit-adjust", "logit-adjust+align", "none")
HEADS = ("trained", "lda")
FINETUNE_HINT = "`textshift transfer MODEL DATA -o OUT --strategy finetune --keep-source-classes`"


class GrowError(DataError):
    """New data cannot grow the model (e.g. it brings no new class)."""


# ---------------------------------------------------------------------------------------------------- settings
@dataclass
class GrowConfig:
    """Settings of one growth step; saved in the grown model's ``textshift.json`` (``extra["grow"]``).

    Attributes
    ----------
    memory_per_class : int
        Examples kept per class in the rehearsal memory (default 20; 0 keeps no memory, which is naive
        fine-tuning unless the new data holds old classes).
    distill : bool
        Add a distillation loss that keeps the new model's outputs on the old classes close to the old model's
        (learning without forgetting; default on). Costs one extra forward pass over the training rows.
    distill_weight : float
        Weight of the distillation loss relative to cross-entropy (> 0).
    temperature : float
        Softmax temperature of the distillation (> 0).
    bias_correction : {"balanced+align", "balanced", "align", "logit-adjust", "logit-adjust+align", "none"}
        How new classes are kept from drowning old ones: ``balanced`` weights the loss so that every class
        counts the same whatever its number of rows; ``align`` shrinks the new classes' head rows to the mean
        norm of the old rows after training when they are longer (weight aligning); ``balanced+align``
        (default) does both; ``logit-adjust`` adds log(rows of the class) to the logits inside the loss instead
        of weighting it (the balanced softmax: a class with few rows, such as a remembered one, must win by a
        wider margin); ``logit-adjust+align`` adds weight aligning to that; ``none`` does nothing.
    asymmetric_loss : bool
        Asymmetric cross-entropy (as in ER-ACE): a row of a new class is scored against the new classes only,
        so the many new rows do not push the old classes' logits down; remembered rows (and rows of old classes
        in the new data) are scored against every class, which is where old and new are told apart.
    calibrate_holdout : int
        Examples per class held out of training to calibrate old against new afterwards (as in BiC): that many
        remembered rows of every old class and rows of every new class are set aside, and after training one
        scale and one shift of the new classes' logits are fitted on them (cross-entropy) and folded into the
        head. 0 (default) turns it off. Classes with too few rows to spare keep all of them for training.
    init_from_mean : bool
        Initialise new head rows from the mean head-input vector of their examples (else at random).
    head : {"trained", "lda"}
        ``trained`` (default): fine-tune the whole model as described above. ``lda``: keep the encoder as it is
        and set every head row from statistics of the feature vectors (per-class means and a shared covariance,
        :mod:`textshift.stats_head`): no training, forward passes only, and the old classes' statistics stay
        exact because the encoder does not move. The statistics are saved with the model.
    shrinkage : float
        ``head="lda"``: weight in [0, 1) of the identity (scaled to the mean variance) mixed into the shared
        covariance; larger is more robust with few rows per class.
    seed : int
        Seed of the memory sampling (training uses ``train.seed``).
    train : TrainConfig
        The fine-tuning settings.
    """

    memory_per_class: int = DEFAULT_MEMORY_PER_CLASS
    distill: bool = True
    distill_weight: float = 1.0
    temperature: float = 2.0
    bias_correction: str = "balanced+align"
    asymmetric_loss: bool = False
    calibrate_holdout: int = 0
    init_from_mean: bool = True
    head: str = "trained"
    shrinkage: float = 0.1
    seed: int = 42
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_types(self)
        checks = [
            ("memory_per_class", self.memory_per_class >= 0, ">= 0"),
            ("calibrate_holdout", self.calibrate_holdout >= 0, ">= 0"),
            ("distill_weight", self.distill_weight > 0, "> 0"),
            ("temperature", self.temperature > 0, "> 0"),
            ("bias_correction", self.bias_correction in BIAS_CORRECTIONS, f"one of {', '.join(BIAS_CORRECTIONS)}"),
            ("head", self.head in HEADS, f"one of {', '.join(HEADS)}"),
            ("shrinkage", 0 <= self.shrinkage < 1, ">= 0 and < 1"),
        ]
        check_settings(self, checks)

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("train")
        return values


# ------------------------------------------------------------------------------------------------------ checks
def _normal(label: str) -> str:
    return " ".join(label.split()).casefold()


def check_new_data(old_labels: list[str], data: TextData) -> tuple[list[str], list[str]]:
    """The new classes of ``data`` (sorted) and warnings; raises :class:`GrowError` when there is none.

    Warns about labels that differ from a known one, or from each other, only by case or whitespace.
    """
    name = Path(data.fingerprint.path).name
    classes = data.classes
    known = set(old_labels)
    added = [label for label in classes if label not in known]
    if not added:
        raise GrowError(f"all {len(classes)} classes of {name} ({', '.join(classes[:5])}"
                        f"{'…' if len(classes) > 5 else ''}) are already classes of the model; expected at least one "
                        f"new class to grow. To improve the model on known classes, fine-tune it instead: "
                        f"{FINETUNE_HINT}")
    warnings = []
    by_normal: dict[str, str] = {_normal(label): label for label in old_labels}
    for label in added:
        twin = by_normal.get(_normal(label))
        if twin is not None:
            kind = "the model's class" if twin in known else "the new class"
            warnings.append(f"label {label!r} in {name} differs from {kind} {twin!r} only by case or whitespace; "
                            f"it becomes a separate class. If it is the same class, rename it to {twin!r}")
        else:
            by_normal[_normal(label)] = label
    counts = Counter(data.labels)
    singles = [label for label in added if counts[label] == 1]
    if singles:
        warnings.append(f"{len(singles)} new class(es) have a single example ({', '.join(singles[:5])}); the model "
                        "will hardly learn them")
    return added, warnings


def no_rehearsal_warning(old_labels: list[str], name: str) -> str:
    """The loud warning for a step that has nothing to rehearse the old classes with."""
    return (f"the model has no rehearsal memory and {name} has no examples of its {len(old_labels)} old classes "
            f"({', '.join(old_labels[:4])}{'…' if len(old_labels) > 4 else ''}): training on the new classes only "
            "will make the model forget the old ones (expect old-class accuracy to drop sharply). "
            "Pass --old-data with examples of the old classes (--memory-per-class of each are sampled)")


# ---------------------------------------------------------------------------------------------------- growing
@dataclass
class GrowResult:
    """What one growth step produced.

    Attributes
    ----------
    classifier : Classifier
        The grown model (a copy; the input classifier is left unchanged).
    memory : Memory
        Its rehearsal memory for the next step.
    added : list of str
        The classes added at this step (head rows appended after the old ones).
    train_result : TrainResult
    warnings : list of str
    rehearsal_rows : int
        Old-class rows trained on besides the new data.
    seconds : float
    stats : FeatureStats or None
        ``head="lda"``: the feature statistics of every class, to save with the model (None otherwise, or when
        some old class had none).
    """

    classifier: Classifier
    memory: Memory
    added: list[str]
    train_result: TrainResult
    warnings: list[str] = field(default_factory=list)
    rehearsal_rows: int = 0
    seconds: float = 0.0
    stats: FeatureStats | None = None


def _class_weights(labels: list[str]) -> list[float]:
    """Per-row weights giving every class the same total weight (mean weight 1)."""
    counts = Counter(labels)
    scale = len(labels) / len(counts)
    return [scale / counts[label] for label in labels]


def _distillation_loss(teacher_logits: np.ndarray, *, n_old: int, weight: float, temperature: float):
    """``loss_fn`` for :func:`~textshift.training.train`: KL(old || new) on the old classes' logits."""
    teacher = torch.as_tensor(teacher_logits, dtype=torch.float32)

    def loss_fn(logits: torch.Tensor, label_ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        target = torch.softmax(teacher[rows.cpu()].to(logits.device) / temperature, dim=-1)
        student = torch.log_softmax(logits[:, :n_old].float() / temperature, dim=-1)
        kl = torch.nn.functional.kl_div(student, target, reduction="batchmean")
        return weight * temperature ** 2 * kl

    return loss_fn


def _align_new_rows(classifier: Classifier, n_old: int) -> float:
    """Weight aligning: shrink the new head rows to the old rows' mean norm. Returns the factor used.

    Only longer new rows are shrunk (a factor of at most 1): they are the bias towards the new classes that
    aligning removes. Shorter new rows mean the new classes are under-trained, and lengthening them makes the
    model forget more (``bench/grow_bills.py``, 2 epochs a step).
    """
    linear = head_linear(classifier.model)
    with torch.no_grad():
        norms = linear.weight.norm(dim=1)
        factor = min(1.0, float(norms[:n_old].mean() / norms[n_old:].mean().clamp_min(1e-8)))
        linear.weight[n_old:] *= factor
    return factor


def _calibration_rows(labels: list[str], added: list[str], *, memory_start: int, per_class: int,
                      seed: int) -> np.ndarray:
    """Rows held out for calibration: ``per_class`` remembered rows of each old class (rows from
    ``memory_start`` on) and ``per_class`` rows of each new class, where the class keeps at least as many to
    train on."""
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    positions = np.arange(len(labels))
    held = np.zeros(len(labels), dtype=bool)
    new_set = set(added)
    for label in sorted(set(labels)):
        pool = positions[(labels_array == label) & ((positions >= memory_start) != (label in new_set))]
        if len(pool) >= 2 * per_class:
            held[rng.choice(pool, per_class, replace=False)] = True
    return held


def _calibrate_new_rows(classifier: Classifier, texts: list[str], labels: list[str], *, n_old: int,
                        max_length: int) -> tuple[float, float]:
    """Fit one scale and one shift of the new classes' logits on held-out rows (BiC) and fold them into the
    head. Returns (scale, shift)."""
    logits = torch.as_tensor(classifier.predict_logits(texts, max_length=max_length))
    targets = torch.as_tensor([classifier.label2id[label] for label in labels])
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=0.1, max_iter=200)

    def corrected() -> torch.Tensor:
        return torch.cat([logits[:, :n_old], logits[:, n_old:] * params[0] + params[1]], dim=1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(corrected(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    scale, shift = (float(value) for value in params.detach())
    if not (np.isfinite(scale) and np.isfinite(shift) and scale > 0):
        return 1.0, 0.0  # a degenerate fit changes nothing
    linear = head_linear(classifier.model)
    with torch.no_grad():
        linear.weight[n_old:] *= scale
        if linear.bias is not None:
            linear.bias[n_old:] = linear.bias[n_old:] * scale + shift
        else:
            shift = 0.0
    return scale, shift


def grow(classifier: Classifier, new_data: TextData, *, memory: Memory | None = None,
         old_data: TextData | None = None, config: GrowConfig | None = None, stats: FeatureStats | None = None,
         progress: ProgressFn | None = None) -> GrowResult:
    """Add the classes of ``new_data`` to a copy of ``classifier`` and train it without forgetting the old ones.

    Parameters
    ----------
    classifier : Classifier
        The trained model; left unchanged.
    new_data : TextData
        Labelled rows; at least one label must be new. Rows of known classes are trained on too.
    memory : Memory, optional
        The model's rehearsal memory (see :func:`read_memory`).
    old_data : TextData, optional
        Examples of the old classes, used when there is no memory: ``memory_per_class`` rows per class are
        sampled from it (they become the new model's memory of those classes). With ``head="lda"`` and no
        ``stats``, the old classes' statistics are computed from all its rows.
    config : GrowConfig, optional
    stats : FeatureStats, optional
        ``head="lda"``: the model's stored feature statistics (see :func:`~textshift.stats_head.read_stats`);
        they must match its encoder weights and classes. Without them they come from ``old_data``, else from
        the memory (approximate: a few rows a class), else the old classes keep their trained rows (warned).
    progress : callable, optional
        Called with the training's :class:`~textshift.training.TrainProgress` (see :func:`textshift.training.train`).

    Returns
    -------
    GrowResult
        The grown classifier (head: old classes in their old order, then the new classes sorted), its memory,
        the added classes and the training record. ``meta.class_history`` gains an entry for this step.
    """
    config = config or GrowConfig()
    if not isinstance(classifier, Classifier):
        raise ConfigError(f"classifier must be a Classifier; got a {type(classifier).__name__}. Load it with "
                          "Classifier.load(folder), or call grow_folder(folder, new_data, output)")
    new_data, old_data = as_text_data(new_data, "new_data"), as_text_data(old_data, "old_data")
    started = time.perf_counter()
    old_labels = list(classifier.labels)
    added, warnings = check_new_data(old_labels, new_data)
    memory = _step_memory(memory or Memory(), old_labels, old_data, config)
    if config.head == "lda":
        return _grow_lda(classifier, new_data, added=added, memory=memory, old_data=old_data, stats=stats,
                         config=config, warnings=warnings, started=started)
    new_texts, new_labels = new_data.texts, new_data.labels
    warnings.extend(_rehearsal_warnings(old_labels, new_labels, memory, Path(new_data.fingerprint.path).name,
                                        config))
    for message in warnings:
        logger.warning(message)

    model = deepcopy_classifier(classifier)
    texts, labels, held, calibration = _calibration_split(
        list(new_texts) + list(memory.texts), list(new_labels) + list(memory.labels), added,
        memory_start=len(new_texts), config=config, warnings=warnings)
    max_length = config.train.max_length
    loss_fn = None
    if config.distill:
        teacher = model.predict_logits(texts, max_length=max_length)
        loss_fn = _distillation_loss(teacher, n_old=len(old_labels), weight=config.distill_weight,
                                     temperature=config.temperature)
    init_rows = (_mean_head_rows(model, new_texts, new_labels, added, held=held, max_length=max_length)
                 if config.init_from_mean else None)
    model.replace_head(old_labels + added, keep_rows=True, init_rows=init_rows)
    weights = _class_weights(labels) if "balanced" in config.bias_correction else None
    train_config = replace(config.train, logit_adjust=1.0) if "logit-adjust" in config.bias_correction else config.train
    row_classes = None
    if config.asymmetric_loss:  # new-class rows compete with the new classes only
        row_classes = np.ones((len(labels), len(model.labels)), dtype=bool)
        row_classes[np.isin(labels, added), :len(old_labels)] = False
    result = train(model, texts, labels, config=train_config,
                   loss=LossShaping(weights=weights, row_classes=row_classes, loss_fn=loss_fn), progress=progress)
    extra = {"grow": config.to_dict() | _correct_new_rows(model, config, n_old=len(old_labels), held=held,
                                                          calibration=calibration, max_length=max_length)}
    _record_step(model, classifier, new_data, added)
    record_training(model, new_data, train_config, result, strategy="grow", warnings=warnings, extra=extra)
    model.meta.extra.pop("memory", None)
    next_memory = memory.updated(new_texts, new_labels, per_class=config.memory_per_class, seed=config.seed) \
        if config.memory_per_class else Memory()
    return GrowResult(classifier=model, memory=next_memory, added=added, train_result=result, warnings=warnings,
                      rehearsal_rows=len(memory), seconds=round(time.perf_counter() - started, 2))


def _step_memory(memory: Memory, old_labels: list[str], old_data: TextData | None, config: GrowConfig) -> Memory:
    """The memory rehearsed in this step: ``memory`` checked against the model's classes, or sampled from
    ``old_data`` when given, trimmed to ``config.memory_per_class`` rows per class."""
    unknown = sorted(set(memory.labels) - set(old_labels))
    if unknown:
        raise RehearsalMemoryError(f"the rehearsal memory holds labels the model does not know "
                                   f"({', '.join(unknown[:5])}); expected the model's own classes. Pass --old-data "
                                   "OLD_TRAINING_DATA --rebuild-memory")
    if old_data is not None:
        known = set(old_labels)
        old_rows = [(t, lab) for t, lab in zip(old_data.texts, old_data.labels, strict=True) if lab in known]
        if not old_rows:
            raise DataError(f"{Path(old_data.fingerprint.path).name} has no rows of the model's classes; expected "
                            "examples of the old classes for --old-data")
        memory = memory.updated([t for t, _ in old_rows], [lab for _, lab in old_rows],
                                per_class=max(config.memory_per_class, 1), seed=config.seed)
    # A memory saved with more rows per class than asked for is trimmed (kept rows come first).
    return memory.updated([], [], per_class=config.memory_per_class) if config.memory_per_class else Memory()


def _rehearsal_warnings(old_labels: list[str], new_labels: list[str], memory: Memory, name: str,
                        config: GrowConfig) -> list[str]:
    """Warnings about old classes that neither the memory nor the new data ``name`` holds examples of."""
    rehearsed = set(memory.labels) | (set(new_labels) & set(old_labels))
    if not rehearsed:
        return [no_rehearsal_warning(old_labels, name) if config.memory_per_class else
                f"memory_per_class is 0 and {name} has no examples of the {len(old_labels)} old classes: "
                "this is naive fine-tuning, and the model will forget the old classes"]
    if set(old_labels) - rehearsed:
        missing = sorted(set(old_labels) - rehearsed)
        return [f"{len(missing)} old class(es) have no example in the memory or in {name} "
                f"({', '.join(missing[:5])}); the model will likely forget them. Pass --old-data with "
                "examples of them"]
    return []


def _calibration_split(texts: list[str], labels: list[str], added: list[str], *, memory_start: int,
                       config: GrowConfig, warnings: list[str]) -> tuple[list[str], list[str], np.ndarray, tuple]:
    """The training rows, the held-out mask over ``texts`` and the calibration rows ``(texts, labels)``, with
    ``config.calibrate_holdout`` rows a class held out (none when it is 0); a warning is added when no class
    can spare them."""
    held = np.zeros(len(texts), dtype=bool)
    if not config.calibrate_holdout:
        return texts, labels, held, ([], [])
    held = _calibration_rows(labels, added, memory_start=memory_start, per_class=config.calibrate_holdout,
                             seed=config.seed)
    if not held.any():
        needed = 2 * config.calibrate_holdout
        warnings.append(f"calibrate_holdout={config.calibrate_holdout}: no class has {needed} rows to spare, so "
                        "nothing is held out and no calibration is fitted; pass a smaller --calibrate-holdout")
        logger.warning(warnings[-1])
    calibration = ([t for t, h in zip(texts, held, strict=True) if h],
                   [lab for lab, h in zip(labels, held, strict=True) if h])
    return ([t for t, h in zip(texts, held, strict=True) if not h],
            [lab for lab, h in zip(labels, held, strict=True) if not h], held, calibration)


def _mean_head_rows(model: Classifier, new_texts: list[str], new_labels: list[str], added: list[str], *,
                    held: np.ndarray, max_length: int) -> dict[str, np.ndarray]:
    """Each added class's mean head-input vector over its training rows of the new data (held-out rows left out)."""
    added_set = set(added)
    new_positions = [i for i, label in enumerate(new_labels) if label in added_set and not held[i]]
    features = model.features([new_texts[i] for i in new_positions], max_length=max_length)
    new_array = np.asarray([new_labels[i] for i in new_positions])
    return {label: features[new_array == label].mean(axis=0) for label in added}


def _correct_new_rows(model: Classifier, config: GrowConfig, *, n_old: int, held: np.ndarray, calibration: tuple,
                      max_length: int) -> dict:
    """After training: weight aligning and the held-out calibration of the new head rows, as configured.
    Returns what was done, for the model's ``extra["grow"]``."""
    done: dict = {}
    if "align" in config.bias_correction:
        done["align_factor"] = round(_align_new_rows(model, n_old), 4)
    if held.any():
        scale, shift = _calibrate_new_rows(model, *calibration, n_old=n_old, max_length=max_length)
        done["calibration"] = {"rows": int(held.sum()), "scale": round(scale, 4), "shift": round(shift, 4)}
    return done


def _record_step(model: Classifier, parent: Classifier, new_data: TextData, added: list[str]) -> None:
    history = list(model.meta.class_history) or [
        {"step": 1, "added": list(parent.labels), "data": (parent.meta.training_data or [None])[-1]}]
    model.meta.class_history = history + [{"step": len(history) + 1, "added": added,
                                           "data": new_data.fingerprint.to_dict()}]


def _grow_lda(classifier: Classifier, new_data: TextData, *, added: list[str], memory: Memory,
              old_data: TextData | None, stats: FeatureStats | None, config: GrowConfig, warnings: list[str],
              started: float) -> GrowResult:
    """``head="lda"``: the encoder stays as it is; every head row comes from the classes' feature statistics."""
    old_labels = list(classifier.labels)
    max_length = config.train.max_length
    model = deepcopy_classifier(classifier)
    fingerprint = encoder_fingerprint(model)
    name = Path(new_data.fingerprint.path).name
    source = "stored"
    if stats is not None:
        check_stats(stats, classifier, fingerprint=fingerprint, source="the statistics passed")
    elif old_data is not None:
        rows = [(t, lab) for t, lab in zip(old_data.texts, old_data.labels, strict=True) if lab in set(old_labels)]
        stats = compute_stats(model, [t for t, _ in rows], [lab for _, lab in rows], max_length=max_length,
                              encoder=fingerprint)
        source = f"old data ({len(rows)} rows)"
    elif len(memory):
        stats = compute_stats(model, memory.texts, memory.labels, max_length=max_length, encoder=fingerprint)
        source = f"memory ({len(memory)} rows)"
        warnings.append(f"the model has no feature statistics: those of its old classes are estimated from the "
                        f"{len(memory)} remembered rows, which is approximate. Pass --old-data OLD_TRAINING_DATA to "
                        "compute them from every old row")
    else:
        source = "none"
    new_stats = compute_stats(model, new_data.texts, new_data.labels, max_length=max_length, encoder=fingerprint)
    stats = stats.merged(new_stats) if stats is not None else new_stats
    missing = [label for label in old_labels if label not in stats.classes]
    if missing:
        warnings.append(f"no feature statistics, memory or --old-data rows for {len(missing)} old class(es) "
                        f"({', '.join(missing[:4])}{'…' if len(missing) > 4 else ''}) and none in {name}: they "
                        "keep their trained head rows, which are not on the scale of the new ones, so expect them "
                        "to be predicted too often or too rarely. Pass --old-data OLD_TRAINING_DATA")
    for message in warnings:
        logger.warning(message)
    model.replace_head(old_labels + added, keep_rows=True)
    fold_into_head(model, stats, shrinkage=config.shrinkage)
    if missing:
        _align_stats_rows(model, [model.label2id[label] for label in missing])
    _record_step(model, classifier, new_data, added)
    result = TrainResult(seconds=round(time.perf_counter() - started, 2), train_rows=len(new_data))
    extra = {"grow": config.to_dict() | {"stats_from": source}}
    record_training(model, new_data, config.train, result, strategy="grow", warnings=warnings, extra=extra)
    model.meta.extra.pop("memory", None)
    next_memory = memory.updated(new_data.texts, new_data.labels, per_class=config.memory_per_class,
                                 seed=config.seed) if config.memory_per_class else Memory()
    return GrowResult(classifier=model, memory=next_memory, added=added, train_result=result, warnings=warnings,
                      rehearsal_rows=0, seconds=round(time.perf_counter() - started, 2),
                      stats=None if missing else stats.reordered(model.labels))


def _align_stats_rows(classifier: Classifier, kept_rows: list[int]) -> None:
    """Scale the statistics rows (weights and biases) to the kept trained rows' mean weight norm."""
    linear = head_linear(classifier.model)
    with torch.no_grad():
        others = [i for i in range(linear.out_features) if i not in set(kept_rows)]
        norms = linear.weight.norm(dim=1)
        factor = norms[kept_rows].mean() / norms[others].mean().clamp_min(1e-8)
        linear.weight[others] *= factor
        centred = linear.bias[others] - linear.bias[others].mean()
        linear.bias[others] = centred * factor + linear.bias[kept_rows].mean()


# -------------------------------------------------------------------------------------------------- measuring
def class_steps(classifier: Classifier) -> list[list[str]]:
    """The classes added at each step, from ``meta.class_history`` (one step of all labels if there is none)."""
    steps = [list(entry.get("added", [])) for entry in classifier.meta.class_history]
    return steps or [list(classifier.labels)]


@dataclass
class StepScores:
    """One row of the accuracy matrix: a model scored on the rows of the classes it knows.

    Attributes
    ----------
    step : int
        The number of growth steps the model has (1 = its first classes).
    step_accuracy : dict of int to float
        Accuracy on the rows of the classes added at each step ``1..step`` (None when the data has no such rows).
    macro_f1 : float
        Macro-F1 over the rows of all classes the model knows.
    accuracy : float
    old_class_accuracy : float or None
        Accuracy on the rows of the classes known before the last step (None at step 1).
    rows : int
    """

    step: int
    step_accuracy: dict[int, float | None]
    macro_f1: float
    accuracy: float
    old_class_accuracy: float | None
    rows: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> StepScores:
        values = dict(values)
        values["step_accuracy"] = {int(k): v for k, v in values["step_accuracy"].items()}
        return cls(**values)


def score_steps(classifier: Classifier, data: TextData, steps: list[list[str]] | None = None, *,
                batch_size: int = 64) -> StepScores:
    """Score ``classifier`` on the rows of ``data`` whose class it knows, split by the step that added the class.

    ``steps`` defaults to :func:`class_steps`; only the steps whose classes the model has are used.
    """
    steps = steps if steps is not None else class_steps(classifier)
    known = set(classifier.labels)
    steps = [s for s in steps if set(s) <= known]
    if not steps:
        raise ModelError("the model knows none of the class steps given; expected steps of its own classes")
    in_scope = {label: number for number, labels in enumerate(steps, 1) for label in labels}
    positions = [i for i, label in enumerate(data.labels) if label in in_scope]
    if not positions:
        raise DataError(f"{Path(data.fingerprint.path).name} has no rows of the model's classes; expected labelled "
                        "evaluation rows of those classes")
    texts = [data.texts[i] for i in positions]
    true = np.asarray([data.labels[i] for i in positions])
    predicted = np.asarray(labels_from(classifier.predict_logits(texts, batch_size=batch_size), classifier.labels))
    correct = predicted == true
    step_of = np.asarray([in_scope[label] for label in true])
    accuracy = {number: (float(correct[step_of == number].mean()) if (step_of == number).any() else None)
                for number in range(1, len(steps) + 1)}
    old = step_of < len(steps)
    return StepScores(
        step=len(steps), step_accuracy=accuracy,
        macro_f1=float(f1_score(true, predicted, labels=sorted(set(true)), average="macro", zero_division=0)),
        accuracy=float(correct.mean()),
        old_class_accuracy=float(correct[old].mean()) if len(steps) > 1 and old.any() else None,
        rows=len(positions))


def accuracy_matrix(rows: list[StepScores]) -> pd.DataFrame:
    """Rows: the model after each step; columns ``step 1..n`` (accuracy on that step's classes) and ``macro_f1``."""
    width = max(r.step for r in rows)
    frame = pd.DataFrame([{**{f"step {j}": r.step_accuracy.get(j) for j in range(1, width + 1)},
                           "macro_f1": r.macro_f1} for r in rows],
                         index=pd.Index([f"after step {r.step}" for r in rows], name="model"))
    return frame


def forgetting(rows: list[StepScores]) -> dict[int, float]:
    """Forgetting of each earlier step's classes by the last model: best earlier accuracy minus the current one."""
    last = rows[-1]
    out = {}
    for j in range(1, last.step):
        earlier = [r.step_accuracy.get(j) for r in rows[:-1] if r.step_accuracy.get(j) is not None]
        current = last.step_accuracy.get(j)
        if earlier and current is not None:
            out[j] = float(max(earlier) - current)
    return out


def recorded_scores(classifier: Classifier, data_sha256: str) -> list[StepScores]:
    """The accuracy-matrix rows stored in ``meta.class_history`` for evaluation data with this sha256."""
    rows = []
    for entry in classifier.meta.class_history:
        evaluation = entry.get("eval") or {}
        if evaluation.get("data", {}).get("sha256") == data_sha256 and evaluation.get("scores"):
            rows.append(StepScores.from_dict(evaluation["scores"]))
    return rows


def record_scores(classifier: Classifier, scores: StepScores, data: TextData) -> None:
    """Store a step's scores in its ``class_history`` entry (so the next step can extend the matrix)."""
    if classifier.meta.class_history:
        classifier.meta.class_history[scores.step - 1]["eval"] = {"data": data.fingerprint.to_dict(),
                                                                  "scores": scores.to_dict()}


# ------------------------------------------------------------------------------------------------------ folders
@dataclass
class GrowReport:
    """The outcome of :func:`grow_folder`, ready to print.

    Attributes
    ----------
    output : Path
    added : list of str
    step : int
    rows, rehearsal_rows : int
        New-data rows and old-class rows (memory or --old-data) trained on.
    seconds : float
    warnings : list of str
    scores : list of StepScores
        Accuracy-matrix rows on the evaluation data (empty without it).
    joint : StepScores or None
        The same scores for one model trained on all data at once (``compare_joint``).
    """

    output: Path
    added: list[str]
    step: int
    rows: int
    rehearsal_rows: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    scores: list[StepScores] = field(default_factory=list)
    joint: StepScores | None = None

    def summary(self) -> dict:
        out = {"output": str(self.output), "step": self.step, "added": self.added, "rows": self.rows,
               "rehearsal_rows": self.rehearsal_rows, "seconds": self.seconds, "warnings": self.warnings}
        if self.scores:
            out["accuracy_matrix"] = [s.to_dict() for s in self.scores]
            out["forgetting"] = forgetting(self.scores)
        if self.joint is not None:
            out["joint"] = self.joint.to_dict()
        return out


def train_joint(backbone: str, data: TextData, config: TrainConfig, *,
                progress: ProgressFn | None = None) -> Classifier:
    """One model trained on all classes at once (the reference a grown model should be compared with)."""
    from textshift.training import train_classifier

    classifier, _ = train_classifier(data, backbone=backbone, config=config, progress=progress)
    return classifier


def grow_folder(model_dir: str | os.PathLike, new_data: TextData, output: str | os.PathLike, *,
                config: GrowConfig | None = None, old_data: TextData | None = None, rebuild_memory: bool = False,
                eval_data: TextData | None = None, compare_joint: bool = False, overwrite: bool = False,
                progress: ProgressFn | None = None) -> GrowReport:
    """Grow the model saved in ``model_dir`` with ``new_data`` and save it, with its new memory, in ``output``.

    With ``eval_data`` the old and new models are scored per step (the accuracy matrix); with ``compare_joint``
    (which needs ``old_data`` holding all old training rows, and ``eval_data``) a model trained on old and new
    data at once from the same backbone is scored too.
    """
    config = config or GrowConfig()
    output = Path(output)
    if compare_joint and (old_data is None or eval_data is None):
        raise ConfigError("--compare-joint trains one model on all the data at once, so it needs the old training "
                          "data and evaluation data; pass --old-data OLD_TRAINING_DATA and --eval-data TEST_DATA")
    if rebuild_memory and old_data is None:
        raise ConfigError("--rebuild-memory samples a new memory from the old training data; pass --old-data too")
    check_output_folder(output, overwrite=overwrite, inputs=(model_dir,))  # fail before the long part
    classifier = Classifier.load(model_dir)
    memory = None if rebuild_memory else read_memory(model_dir)
    stats = read_stats(model_dir, classifier) if config.head == "lda" and not rebuild_memory else None
    if not classifier.meta.class_history:
        classifier.meta.class_history = [{"step": 1, "added": list(classifier.labels),
                                          "data": (classifier.meta.training_data or [None])[-1]}]
    check_new_data(classifier.labels, new_data)  # fail before scoring the old model
    previous: list[StepScores] = []
    if eval_data is not None:
        previous = [s for s in recorded_scores(classifier, eval_data.fingerprint.sha256)
                    if s.step < len(classifier.meta.class_history)]
        previous.append(score_steps(classifier, eval_data))
        record_scores(classifier, previous[-1], eval_data)
    result = grow(classifier, new_data, memory=memory, old_data=old_data, config=config, stats=stats,
                  progress=progress)
    grown = result.classifier
    grown.meta.source_model = str(classifier.path or Path(model_dir).resolve())
    report = GrowReport(output=output, added=result.added, step=len(grown.meta.class_history), rows=len(new_data),
                        rehearsal_rows=result.rehearsal_rows, seconds=result.seconds, warnings=result.warnings)
    if eval_data is not None:
        current = score_steps(grown, eval_data)
        record_scores(grown, current, eval_data)
        report.scores = previous + [current]
    save_with_memory(grown, output, result.memory, overwrite=True, per_class=config.memory_per_class,
                     stats=result.stats)
    if compare_joint:
        known = set(grown.labels)
        old_rows = [(t, lab) for t, lab in zip(old_data.texts, old_data.labels, strict=True) if lab in known]
        everything = TextData.from_lists([t for t, _ in old_rows] + new_data.texts,
                                         [lab for _, lab in old_rows] + new_data.labels, name="old+new data")
        joint = train_joint(classifier.meta.backbone, everything, config.train, progress=progress)
        report.joint = score_steps(joint, eval_data, class_steps(grown))
    return report
