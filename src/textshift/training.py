"""The training loop: one validated settings dataclass and one function, on Hugging Face Accelerate.

The loop knows nothing about strategies (those live in :mod:`textshift.transfer`) nor about file formats
(epoch checkpoints are :mod:`textshift.checkpoints`). It runs unchanged on CPU, one GPU, or several processes
(``accelerate launch``/``torchrun``: data-parallel, every process ends with the same weights).

Schedule (defaults chosen by measurement, see BENCHMARKS.md):

1. **Head warm-up** — the encoder is frozen; the last linear layer is trained on cached head features,
   which costs one forward pass over the data. A new head thus starts from a sensible solution instead of
   sending random gradients into the pretrained encoder.
2. **Full fine-tuning** — every weight trains with AdamW and a linear schedule; optional layer-wise
   learning-rate decay (``layer_lr_decay < 1``) and gradual unfreezing (top layer first). On CPU the dropout
   masks are drawn by :mod:`textshift.dropout` (same distribution, less time per step).
3. **Model selection** — with a validation set, the epoch with the best macro-F1 is kept and training stops
   after ``patience`` epochs without improvement.
4. **Checkpoints** (optional) — after every fine-tuning epoch, so a killed run can resume and end with the same
   model as an uninterrupted one.

Example
-------
>>> from textshift.model import Classifier
>>> from textshift.training import TrainConfig, train
>>> clf = Classifier.from_backbone(labels=["a", "b"])
>>> result = train(clf, ["good", "bad"], ["a", "b"], config=TrainConfig(epochs=1))
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from textshift.dropout import cheap_dropout
from textshift.errors import ConfigError, DataError
from textshift.model import Classifier, encoder_module, head_linear
from textshift.tokens import LabelledRows, LengthGroupedBatches, RowCollator, TokenizedTexts
from textshift.validation import check_settings, check_types
from textshift.windows import LongTexts, WindowEncoder

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class LossShaping:
    """How a caller shapes the training loss; the loop applies it without knowing why.

    The plain loss is every row's cross-entropy over every class, rows weighted alike. Strategies change it
    through this one object: joint training up-weights the target rows (``weights``), :func:`textshift.grow.grow`
    scores rows of new classes against the new classes only (``row_classes``) and adds a distillation term
    (``loss_fn``), and the balanced softmax shifts the logits inside the loss (``class_offsets``, which
    :func:`train` fills in from ``TrainConfig.logit_adjust``).

    Attributes
    ----------
    weights : sequence of float, optional
        One loss weight per training row, finite and >= 0, at least one > 0 (e.g. to up-weight target rows in
        joint training). Default: 1 for every row.
    row_classes : array of bool, optional
        Shape (rows, classes of the model): the classes each row's cross-entropy is taken over; the other
        classes' logits are left out of that row's softmax (e.g. rows of new classes scored against the new
        classes only, as :func:`textshift.grow.grow` does). Every row's own label must be among its classes.
        Default: every class for every row. Not combined with label smoothing.
    class_offsets : array of float, optional
        Shape (classes,): added to each class's logit inside the loss only, never at prediction.
        :func:`train` sets them to ``TrainConfig.logit_adjust * log(training rows of the class)`` (the rows left
        after the validation hold-out) and refuses offsets passed here as well.
    loss_fn : callable, optional
        ``loss_fn(logits, label_ids, row_indices) -> scalar`` added to the cross-entropy loss of every
        fine-tuning step (e.g. distillation); ``row_indices`` are the rows' positions among the caller's rows.
        The head warm-up (:func:`warm_up_head`) does not apply it.

    Example
    -------
    >>> shaping = LossShaping(weights=[1.0, 3.0])
    >>> shaping.weights
    [1.0, 3.0]
    """

    weights: Sequence[float] | np.ndarray | None = None
    row_classes: np.ndarray | None = None
    class_offsets: np.ndarray | None = None
    loss_fn: LossFn | None = None


@dataclass(frozen=True)
class TrainProgress:
    """Where a training run is, handed to the ``progress`` callback of :func:`train` (the library draws nothing;
    the command line turns these into a bar and one line per epoch).

    Attributes
    ----------
    phase : str
        ``"head warm-up"`` (encoder frozen; ``epoch`` 0, no steps) or ``"fine-tune"``.
    epoch : int
        The epoch under way, from 1 (0 in the head warm-up).
    epochs : int
        Fine-tuning epochs planned; early stopping may end the run sooner.
    step, steps : int
        Batches done in this epoch, and batches per epoch (on this process).
    loss : float or None
        Mean training loss of the epoch so far (refreshed every 25 steps and at the end of the epoch).
    val_macro_f1 : float or None
        Validation macro-F1 after the epoch (or the warm-up), when there is validation data.
    done : bool
        True once the epoch (or the warm-up), its validation included, is finished.
    seconds : float
        Time since the run started.
    run : str
        Which run this is, when a caller trains several (:func:`textshift.compare.compare` names them);
        empty otherwise.
    """

    phase: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float | None = None
    val_macro_f1: float | None = None
    done: bool = False
    seconds: float = 0.0
    run: str = ""


ProgressFn = Callable[[TrainProgress], None]


# Settings added after runs were first stored: left out of to_dict() at their default value, so the stored
# runs' settings (and the run keys of `textshift compare`) stay those of the same training.
ADDED_SETTINGS = {"logit_adjust": 0.0, "long_texts": "truncate", "window_overlap": 32, "max_windows": 64}


@dataclass
class TrainConfig:
    """Every setting of a training run; saved with the model so a run can be reproduced.

    Attributes
    ----------
    epochs : int or None
        Full fine-tuning epochs. ``None`` (default) picks enough epochs for about ``target_steps`` optimizer
        steps, between 3 and 20 — small datasets need many epochs, large ones few.
    target_steps : int
        Optimizer steps aimed at when ``epochs`` is None.
    batch_size : int
    learning_rate : float
        Peak learning rate of the full fine-tuning phase (the head's; lower layers get less with decay).
    warmup_epochs : int
        Head warm-up epochs with the encoder frozen (0 turns warm-up off), on at most 50,000 rows (a seeded
        sample of larger data).
    head_learning_rate : float
        Learning rate of the head warm-up.
    layer_lr_decay : float
        Layer-wise learning-rate decay in (0, 1]; layer ``i`` of ``L`` gets ``lr * decay**(L - i)``.
    gradual_unfreeze : bool
        Unfreeze one more encoder layer (top first) each epoch instead of all at once.
    weight_decay, warmup_ratio, label_smoothing, max_grad_norm : float
    logit_adjust : float
        Logit-adjusted loss (Menon et al., 2021): ``logit_adjust * log(training rows of the class)`` is added to
        each class's logit inside the training loss only. 1 is the balanced softmax: rare classes must win by a
        wider margin, so the trained model does not favour the frequent ones. 0 (default) turns it off.
    max_length : int
        Tokens per text (per window in ``chunks`` mode).
    long_texts : {"truncate", "chunks"}
        Texts longer than ``max_length``: cut (``truncate``), or read whole in overlapping windows whose outputs
        are averaged (``chunks``; see :mod:`textshift.windows`). Saved with the model, which predicts the same way.
    window_overlap : int
        Tokens shared by consecutive windows (``chunks``).
    max_windows : int
        Most windows per text (``chunks``); a longer text keeps this many, spread from its start to its end.
    val_fraction : float
        Share of the training rows held out for model selection when no validation data is passed.
    min_val_rows : int
        Below this many held-out rows, no split is made: every row is trained on for the full schedule and the
        last epoch is kept. A small validation set picks epochs almost at random and costs training data:
        with 100 held-out rows (about 5 per class over 20 classes) a 1,000-row sample ended lower, and far
        less steady across seeds, than the same sample trained whole (BENCHMARKS.md §2, the automatic
        hold-out). So the default only holds out from 10,000 rows on, where 10% is a validation set large
        enough to choose the epoch; pass validation data to choose epochs on smaller sets.
    patience : int
        Epochs without validation improvement before stopping early.
    seed : int
    """

    epochs: int | None = None
    target_steps: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_epochs: int = 10
    head_learning_rate: float = 5e-3
    layer_lr_decay: float = 1.0
    gradual_unfreeze: bool = False
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    label_smoothing: float = 0.0
    max_grad_norm: float = 1.0
    logit_adjust: float = 0.0
    max_length: int = 128
    long_texts: str = "truncate"
    window_overlap: int = 32
    max_windows: int = 64
    val_fraction: float = 0.1
    min_val_rows: int = 1000
    patience: int = 3
    seed: int = 42

    def __post_init__(self) -> None:
        check_types(self)
        checks = [
            ("epochs", self.epochs is None or self.epochs >= 0, ">= 0 or None"),
            ("target_steps", self.target_steps > 0, "> 0"),
            ("batch_size", self.batch_size > 0, "> 0"),
            ("learning_rate", 0 < self.learning_rate < 1, "in (0, 1)"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"),
            ("head_learning_rate", 0 < self.head_learning_rate < 10, "in (0, 10)"),
            ("layer_lr_decay", 0 < self.layer_lr_decay <= 1, "in (0, 1]"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("logit_adjust", 0 <= self.logit_adjust <= 10, "in [0, 10]"),
            ("max_length", 8 <= self.max_length <= 8192, "in [8, 8192]"),
            ("val_fraction", 0 <= self.val_fraction < 0.5, "in [0, 0.5)"),
            ("min_val_rows", self.min_val_rows >= 1, ">= 1"),
            ("patience", self.patience >= 1, ">= 1"),
        ]
        check_settings(self, checks)
        self.windows()  # checks long_texts, window_overlap and max_windows
        if self.epochs == 0 and self.warmup_epochs == 0:
            raise ConfigError("epochs 0 and warmup_epochs 0 would save an untrained model; expected at least one "
                              "epoch of either. Pass --epochs N, or --warmup-epochs N to train only the head")

    def to_dict(self) -> dict:
        values = asdict(self)
        for name, default in ADDED_SETTINGS.items():  # so runs stored before a setting existed keep their key
            if values[name] == default:
                del values[name]
        return values

    def windows(self) -> LongTexts:
        """The long-text setting (:class:`~textshift.windows.LongTexts`)."""
        return LongTexts(mode=self.long_texts, overlap=self.window_overlap, max_windows=self.max_windows)

    def holds_out(self, n_rows: int) -> bool:
        """Whether training on ``n_rows`` rows (no validation data passed) holds some out for validation."""
        return self.val_fraction > 0 and n_rows * self.val_fraction >= self.min_val_rows

    def same_run(self, other: TrainConfig, sizes: list[int]) -> bool:
        """Whether training on sets of these sizes gives the same result under ``self`` and ``other``.

        The settings must be equal except for the validation split, which only has to make the same decision
        (and the same split) for every size: e.g. ``min_val_rows`` 50 and 100 train 200 rows alike.
        """
        def effective(config: TrainConfig) -> dict:
            values = config.to_dict()
            fraction, _ = values.pop("val_fraction"), values.pop("min_val_rows")
            values["holdout"] = [fraction if config.holds_out(n) else 0.0 for n in sizes]
            return values
        return effective(self) == effective(other)

    def epochs_for(self, n_rows: int) -> int:
        if self.epochs is not None:
            return self.epochs
        steps_per_epoch = max(1, math.ceil(n_rows / self.batch_size))
        return int(min(20, max(3, math.ceil(self.target_steps / steps_per_epoch))))


WARMUP_MAX_ROWS = 50_000  # rows whose features the head warm-up uses (a seeded sample of larger data)


@dataclass
class TrainResult:
    """What happened during training."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    val_metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    train_rows: int = 0
    val_rows: int = 0
    lengths: dict = field(default_factory=dict)


def set_seed(seed: int) -> None:
    from accelerate.utils import set_seed as accelerate_set_seed

    accelerate_set_seed(seed)


def stratified_holdout(labels: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into (train, held-out), keeping every class in train; classes of one example stay in train."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    held: list[int] = []
    for label in sorted(set(labels)):
        positions = np.flatnonzero(labels_arr == label)
        rng.shuffle(positions)
        take = int(round(len(positions) * fraction))
        take = min(take, len(positions) - 1)
        held.extend(positions[:take].tolist())
    held_arr = np.array(sorted(held), dtype=int)
    train_arr = np.setdiff1d(np.arange(len(labels)), held_arr)
    return train_arr, held_arr


def stratified_folds(label_ids: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(training rows, held-out rows)`` of ``folds`` seeded folds (fewer when there are fewer rows), every row
    held out once; stratified by label when some class can fill every fold. Needs at least 2 rows."""
    import warnings

    from sklearn.model_selection import KFold, StratifiedKFold

    label_ids = np.asarray(label_ids)
    n = len(label_ids)
    folds = min(folds, n)
    if folds < 2:
        raise DataError(f"out-of-fold scores need at least 2 items; found {n}. Add data")
    counts = np.bincount(label_ids)
    if counts[counts > 0].max() >= folds:
        with warnings.catch_warnings():  # rare classes: sklearn warns that they cannot fill every fold
            warnings.simplefilter("ignore", UserWarning)
            splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(n), label_ids))
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def score(true: list[str], predicted: list[str]) -> dict:
    return {"accuracy": float(accuracy_score(true, predicted)),
            "macro_f1": float(f1_score(true, predicted, average="macro", zero_division=0))}


def _encoder_layers(model: nn.Module) -> list[nn.Module]:
    body = encoder_module(model)
    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers", "h"):
        module = body
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return list(module)
    return []


def adamw(params, **kwargs) -> torch.optim.Optimizer:
    """AdamW with the fused kernel where the device supports it: on a CPU one optimizer step on MiniLM is many
    times faster than with the per-tensor loop (``bench/speed.py``; BENCHMARKS.md §8)."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # devices or dtypes without a fused kernel
        return torch.optim.AdamW(params, foreach=True, **kwargs)


def _param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """AdamW groups: layer-wise learning rates, no weight decay on biases and LayerNorm weights."""
    layers = _encoder_layers(model)
    depth = len(layers)
    layer_of: dict[int, int] = {}
    for index, layer in enumerate(layers):
        for param in layer.parameters():
            layer_of[id(param)] = index + 1
    body_ids = {id(p) for p in encoder_module(model).parameters()}
    embeddings = getattr(encoder_module(model), "embeddings", None)
    embedding_ids = {id(p) for p in embeddings.parameters()} if embeddings is not None else set()
    groups: dict[tuple[float, bool], list] = {}
    for name, param in model.named_parameters():
        if id(param) in layer_of:
            level = layer_of[id(param)]
        elif id(param) in embedding_ids:
            level = 0
        elif id(param) in body_ids:
            level = depth  # pooler and other top-of-body modules
        else:
            level = depth + 1  # the head
        lr = config.learning_rate * config.layer_lr_decay ** max(0, depth + 1 - level)
        no_decay = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((lr, no_decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": 0.0 if no_decay else config.weight_decay}
            for (lr, no_decay), params in groups.items()]


def _set_trainable_layers(model: nn.Module, n_top_layers: int | None) -> None:
    """Freeze the encoder but its top ``n_top_layers`` layers (None: everything trains)."""
    layers = _encoder_layers(model)
    for param in model.parameters():
        param.requires_grad = n_top_layers is None
    if n_top_layers is None:
        return
    for param in encoder_module(model).parameters():
        param.requires_grad = False
    for layer in layers[len(layers) - n_top_layers:] if n_top_layers else []:
        for param in layer.parameters():
            param.requires_grad = True
    body = encoder_module(model)
    for module in (getattr(body, "pooler", None),):
        if module is not None:
            for param in module.parameters():
                param.requires_grad = True


def warm_up_head(classifier: Classifier, features: np.ndarray, label_ids: np.ndarray, *, epochs: int,
                 learning_rate: float, batch_size: int, seed: int, weight_decay: float = 0.0,
                 loss: LossShaping | None = None) -> None:
    """Train only the last linear layer on precomputed head features (the encoder stays frozen).

    ``loss`` (:class:`LossShaping`), when given, holds one weight and one row of class flags per feature row and
    the logit offsets; its ``loss_fn`` is not applied here.
    """
    if epochs <= 0 or len(features) == 0:
        return
    loss = loss or LossShaping()
    linear = head_linear(classifier.model)
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(label_ids, dtype=torch.long)
    w = torch.as_tensor(loss.weights if loss.weights is not None else np.ones(len(y)), dtype=torch.float32)
    allowed = torch.as_tensor(loss.row_classes, dtype=torch.bool) if loss.row_classes is not None else None
    offsets = torch.as_tensor(loss.class_offsets, dtype=torch.float32) if loss.class_offsets is not None else 0
    weight = linear.weight.detach().cpu().float().clone().requires_grad_(True)
    bias = (linear.bias.detach().cpu().float().clone().requires_grad_(True) if linear.bias is not None else None)
    params = [weight] + ([bias] if bias is not None else [])
    optimizer = adamw(params, lr=learning_rate, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            logits = x[idx] @ weight.T + (bias if bias is not None else 0) + offsets
            if allowed is not None:
                logits = logits.masked_fill(~allowed[idx], float("-inf"))
            batch_loss = (nn.functional.cross_entropy(logits, y[idx], reduction="none") * w[idx]).sum() / w[idx].sum()
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
    with torch.no_grad():
        linear.weight.copy_(weight.to(linear.weight.device, linear.weight.dtype))
        if bias is not None:
            linear.bias.copy_(bias.to(linear.bias.device, linear.bias.dtype))


def train(classifier: Classifier, texts: list[str], labels: list[str], *, config: TrainConfig | None = None,
          val_texts: list[str] | None = None, val_labels: list[str] | None = None,
          loss: LossShaping | None = None, progress: ProgressFn | None = None, accelerator=None,
          checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
          run_tag: dict | None = None) -> TrainResult:
    """Train ``classifier`` in place on ``texts``/``labels`` and return what happened.

    Parameters
    ----------
    classifier : Classifier
        Its labels must include every label in ``labels``.
    texts, labels : list of str
        Training rows.
    config : TrainConfig, optional
        Settings; defaults are tuned for small datasets.
    val_texts, val_labels : list of str, optional
        Validation rows for model selection. When omitted, ``config.val_fraction`` of the training rows are
        held out (stratified) if that gives at least ``config.min_val_rows`` rows.
    loss : LossShaping, optional
        Row weights, the classes each row is scored against, and an extra loss term (see
        :class:`LossShaping`); default: the plain cross-entropy, every row weighted alike.
    progress : callable, optional
        Called on the main process with a :class:`TrainProgress` after every step and at the end of every epoch
        (epoch, loss, validation score). Nothing is printed either way; ``textshift train`` draws a bar from it.
    accelerator : accelerate.Accelerator, optional
        Pass one to control devices/mixed precision; a default one is made otherwise. Under
        ``accelerate launch``/``torchrun`` each process trains on its share of the batches (DDP); validation
        runs on the main process and its scores are sent to all, so every process stops at the same epoch and
        ends with the same weights.
    checkpoint_dir : path, optional
        Save a checkpoint (see :mod:`textshift.checkpoints`) after every fine-tuning epoch; the main process
        writes it. Without ``resume``, older checkpoints there are deleted first.
    resume : bool
        Continue from the newest checkpoint in ``checkpoint_dir`` when there is one (else start fresh): the
        head warm-up and finished epochs are skipped and the weights, optimizer, schedule, random generators
        and batch order are restored, so the result equals an uninterrupted run's. The data, settings, labels
        and number of processes must be those of the interrupted run (ConfigError otherwise).
    run_tag : dict, optional
        Anything else a resumed run must share with the interrupted one (e.g. ``{"strategy": "finetune"}``);
        it is stored in the checkpoint's fingerprint and compared like the settings.
    """
    run = _prepare_run(classifier, texts, labels, config=config or TrainConfig(), val_texts=val_texts,
                       val_labels=val_labels, loss=loss, progress=progress, accelerator=accelerator,
                       checkpoint_dir=checkpoint_dir, resume=resume)
    _start_or_resume(run, resume=resume, run_tag=run_tag)
    _head_warm_up(run)
    _prepare_fine_tuning(run)
    with cheap_dropout(classifier.model):  # cheaper dropout masks on CPU, for the fine-tuning steps only
        for epoch in range(run.first_epoch, run.epochs + 1):
            record = _fine_tune_epoch(run, epoch)
            if _select_and_checkpoint(run, record):
                break
    return _finish(run)


@dataclass
class _Run:
    """One run of :func:`train`: its rows and settings, and the state its phases hand on to each other."""

    classifier: Classifier
    config: TrainConfig
    texts: list[str]
    labels: list[str]
    label_ids: np.ndarray
    indices: np.ndarray  # each training row's position among the caller's rows (for row_classes and loss_fn)
    val_texts: list[str] | None
    val_labels: list[str] | None
    loss: LossShaping  # weights and row_classes of every caller's row (index them by `indices`), offsets set
    checkpoint_dir: str | os.PathLike | None
    result: TrainResult
    started: float
    accelerator: Any
    model: nn.Module
    hooked: bool
    report: ProgressFn
    fingerprint: dict | None = None
    saved: Any = None  # the checkpoints.Checkpoint resumed from
    loader: Any = None
    optimizer: Any = None
    scheduler: Any = None
    epochs: int = 0
    first_epoch: int = 1
    n_layers: int = 0
    allowed: torch.Tensor | None = None
    offsets: torch.Tensor | None = None
    best_score: float = -1.0
    best_state: dict | None = None
    stale: int = 0

    @property
    def has_val(self) -> bool:
        return bool(self.val_texts)

    @property
    def row_weights(self) -> np.ndarray:
        """The loss weight of each training row."""
        return self.loss.weights[self.indices]

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def _check_inputs(classifier: Classifier, texts, labels, *, config: TrainConfig, val_texts, val_labels, weights,
                  progress, checkpoint_dir, resume: bool) -> tuple[np.ndarray | None, ProgressFn | None]:
    """Refuse bad arguments of :func:`train` (``weights``: those of its :class:`LossShaping`); returns the row
    weights as an array and the progress callback."""
    if len(texts) != len(labels):
        raise DataError(f"got {len(texts)} texts but {len(labels)} labels; expected one label per text")
    if not len(texts):
        raise DataError("no training rows; expected at least one labelled text")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(texts),):
            raise DataError(f"got {weights.size} row weights for {len(texts)} texts; expected one weight per text")
        if not np.isfinite(weights).all() or (weights < 0).any() or not (weights > 0).any():
            raise DataError("row weights must be finite and >= 0, and at least one > 0; got "
                            f"min {weights.min():g}, max {weights.max():g}")
    if (val_texts is None) != (val_labels is None):
        raise DataError("val_texts and val_labels go together; expected both or neither")
    if val_texts is not None and len(val_texts) != len(val_labels):
        raise DataError(f"got {len(val_texts)} validation texts but {len(val_labels)} labels; expected one label per "
                        "text")
    classifier.check_max_length(config.max_length)
    WindowEncoder(classifier.tokenizer, max_length=config.max_length, long_texts=config.windows())  # overlap fits
    classifier.long_texts = config.windows()  # validation, warm-up features and the saved model read texts so
    unknown = sorted(set(labels) - set(classifier.label2id))
    if unknown:
        raise DataError(f"labels {unknown[:5]} are not classes of the model ({len(classifier.label2id)} classes); "
                        "expected training labels among the model's classes")
    if progress is not None and not callable(progress):
        if progress is not False:  # False: the default of callers written before progress took a callback
            raise ConfigError(f"progress takes a callable (called with a TrainProgress) or None; got {progress!r}. "
                              "Pass e.g. progress=print")
        progress = None
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs a checkpoint_dir to resume from; pass the folder of the interrupted run")
    check_val_labels(labels, val_labels)
    return weights, progress


def _prepare_run(classifier: Classifier, texts, labels, *, config: TrainConfig, val_texts, val_labels,
                 loss: LossShaping | None, progress, accelerator, checkpoint_dir, resume: bool) -> _Run:
    """Check the arguments, seed, hold out validation rows when none are given, and place the model."""
    from accelerate import Accelerator

    started = time.perf_counter()
    loss = loss or LossShaping()
    weights, progress = _check_inputs(classifier, texts, labels, config=config, val_texts=val_texts,
                                      val_labels=val_labels, weights=loss.weights, progress=progress,
                                      checkpoint_dir=checkpoint_dir, resume=resume)
    set_seed(config.seed)
    texts, labels = list(texts), list(labels)
    row_weights = np.asarray(weights if weights is not None else np.ones(len(texts)), dtype=np.float32)
    indices = np.arange(len(texts))
    row_classes = (_check_row_classes(loss.row_classes, labels, classifier.label2id, config)
                   if loss.row_classes is not None else None)
    if val_texts is None and config.holds_out(len(texts)):
        train_pos, val_pos = stratified_holdout(labels, config.val_fraction, config.seed)
        val_texts, val_labels = [texts[i] for i in val_pos], [labels[i] for i in val_pos]
        texts, labels = [texts[i] for i in train_pos], [labels[i] for i in train_pos]
        indices = indices[train_pos]
    loss = replace(loss, weights=row_weights, row_classes=row_classes,
                   class_offsets=_class_offsets(loss.class_offsets, labels, classifier.labels, config))
    result = TrainResult(train_rows=len(texts), val_rows=len(val_texts or []))
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    model = classifier.model.to(accelerator.device)
    hooked = progress is not None and accelerator.is_main_process
    return _Run(classifier=classifier, config=config, texts=texts, labels=labels,
                label_ids=np.array([classifier.label2id[label] for label in labels]), indices=indices,
                val_texts=val_texts, val_labels=val_labels, loss=loss, checkpoint_dir=checkpoint_dir, result=result,
                started=started, accelerator=accelerator, model=model, hooked=hooked,
                report=progress if hooked else (lambda _event: None))


def _class_offsets(given: np.ndarray | None, labels: list[str], classes: list[str],
                   config: TrainConfig) -> np.ndarray | None:
    """The logit offsets of the loss: ``given``, or the logit adjustment's from the rows actually trained on."""
    if given is None:
        return config.logit_adjust * log_class_counts(labels, classes) if config.logit_adjust else None
    offsets = np.asarray(given, dtype=np.float32)
    if config.logit_adjust:
        raise ConfigError("class_offsets and logit_adjust both shift the logits in the loss; expected one of them. "
                          "Set logit_adjust=0 or leave class_offsets out")
    if offsets.shape != (len(classes),) or not np.isfinite(offsets).all():
        raise ConfigError(f"class_offsets has shape {offsets.shape}; expected ({len(classes)},), one finite offset "
                          "per class of the model")
    return offsets


def _start_or_resume(run: _Run, *, resume: bool, run_tag: dict | None) -> None:
    """With a checkpoint folder: load the newest checkpoint of this run when resuming, else clear the folder."""
    from textshift import checkpoints

    accelerator = run.accelerator
    if run.checkpoint_dir is not None:
        distributed_type = str(accelerator.distributed_type).rsplit(".", 1)[-1]
        if distributed_type in ("FSDP", "DEEPSPEED", "MEGATRON_LM", "XLA"):
            raise ConfigError(f"checkpoints support one process or DDP; this run uses {distributed_type}. Launch "
                              "without FSDP/DeepSpeed, or train without checkpoints")
        fingerprint = _run_fingerprint(run.classifier, run.texts, run.labels, run.row_weights, run.val_texts,
                                       run.val_labels, run.config, accelerator.num_processes,
                                       run.loss.row_classes)
        run.fingerprint = fingerprint | ({"run": run_tag} if run_tag else {})
        found = checkpoints.latest_checkpoint(run.checkpoint_dir) if resume else None
        if accelerator.num_processes > 1:  # the main process's view decides, so all resume (or not) alike
            from accelerate.utils import broadcast_object_list

            found = broadcast_object_list([found], from_process=0)[0]
        if found is not None:
            checkpoints.check_fingerprint(found, checkpoints.read_state(found).get("fingerprint", {}),
                                          run.fingerprint)
            run.saved = checkpoints.load_checkpoint(found, process_index=accelerator.process_index)
            logger.info("resuming from %s", found)
        elif accelerator.is_main_process:
            checkpoints.clear_checkpoints(run.checkpoint_dir)
        accelerator.wait_for_everyone()
    if run.saved is not None:
        run.model.load_state_dict(run.saved.model)
        run.result.history = list(run.saved.state["history"])
        run.started -= run.saved.state["seconds"]


def _head_warm_up(run: _Run) -> None:
    """Phase 1: train the head on cached features (one forward pass; the encoder is frozen anyway)."""
    config, texts, classifier = run.config, run.texts, run.classifier
    if run.saved is not None or config.warmup_epochs <= 0:
        return
    run.report(TrainProgress("head warm-up", 0, config.epochs_for(len(texts)), seconds=run.seconds()))
    # A linear head needs no million rows to warm up; a seeded sample keeps the feature matrix bounded.
    warm = (np.sort(np.random.default_rng(config.seed).choice(len(texts), WARMUP_MAX_ROWS, replace=False))
            if len(texts) > WARMUP_MAX_ROWS else np.arange(len(texts)))
    features = classifier.features([texts[i] for i in warm], max_length=config.max_length)
    row_classes = run.loss.row_classes
    warm_up_head(classifier, features, run.label_ids[warm], epochs=config.warmup_epochs,
                 learning_rate=config.head_learning_rate, batch_size=config.batch_size, seed=config.seed,
                 loss=replace(run.loss, weights=run.row_weights[warm],
                              row_classes=row_classes[run.indices[warm]] if row_classes is not None else None))
    metrics = (_validate_on_main(classifier, run.val_texts, run.val_labels, config, run.accelerator)
               if run.has_val else {})
    if run.has_val:
        run.result.history.append({"epoch": 0, "phase": "head warm-up", **metrics, "seconds": round(run.seconds(), 2)})
    run.report(TrainProgress("head warm-up", 0, config.epochs_for(len(texts)), val_macro_f1=metrics.get("val_macro_f1"),
                             done=True, seconds=run.seconds()))


def _prepare_fine_tuning(run: _Run) -> None:
    """Phase 2 set-up: batches, optimizer and schedule of the fine-tuning epochs, restored when resuming.

    The loader is not passed to accelerator.prepare: the sampler shards itself. In chunks mode each window is a
    row with its text's label, weighted 1/windows: every text counts once.
    """
    from transformers import get_linear_schedule_with_warmup

    config, accelerator, classifier, saved = run.config, run.accelerator, run.classifier, run.saved
    tokens = TokenizedTexts.build(classifier.tokenizer, run.texts, max_length=config.max_length,
                                  long_texts=config.windows())
    run.result.lengths = tokens.report.to_dict()
    windows_per_text = np.bincount(tokens.owners, minlength=len(run.texts))
    rows = LabelledRows(tokens, run.label_ids[tokens.owners],
                        (run.row_weights / windows_per_text)[tokens.owners].astype(np.float32),
                        run.indices[tokens.owners])
    sampler = LengthGroupedBatches(tokens.lengths, config.batch_size, seed=config.seed,
                                   num_shards=accelerator.num_processes, shard_index=accelerator.process_index)
    run.loader = torch.utils.data.DataLoader(rows, batch_sampler=sampler,
                                             collate_fn=RowCollator(classifier.tokenizer))
    run.epochs = config.epochs_for(len(run.texts))
    # A prepared scheduler steps once per process per optimizer step, so count steps over all processes.
    total_steps = max(1, run.epochs * len(run.loader) * accelerator.num_processes)
    optimizer = adamw(_param_groups(run.model, config))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    if saved is not None:
        optimizer.load_state_dict(saved.optimizer)
        scheduler.load_state_dict(saved.state["scheduler"])
        run.best_score, run.best_state, run.stale = saved.state["best_score"], saved.best, saved.state["stale"]
        run.result.best_epoch = saved.state["best_epoch"]
        run.first_epoch = saved.epoch + 1
        sampler.epoch = saved.epoch
        if run.has_val and run.stale >= config.patience:
            run.first_epoch = run.epochs + 1  # the interrupted run had already stopped early
    run.model, run.optimizer, run.scheduler = accelerator.prepare(run.model, optimizer, scheduler)
    if saved is not None:
        from textshift import checkpoints

        checkpoints.restore_rng(saved.rng["tensors"], saved.rng["values"])
    run.n_layers = len(_encoder_layers(classifier.model))
    loss = run.loss
    run.allowed = (torch.as_tensor(loss.row_classes, device=accelerator.device) if loss.row_classes is not None
                   else None)
    run.offsets = (torch.as_tensor(loss.class_offsets, dtype=torch.float32, device=accelerator.device)
                   if loss.class_offsets is not None else None)


def _fine_tune_epoch(run: _Run, epoch: int) -> dict:
    """Phase 2: one epoch of training every (unfrozen) weight; returns the epoch's record with its mean loss."""
    accelerator, loader = run.accelerator, run.loader
    if run.config.gradual_unfreeze and accelerator.num_processes == 1:
        _set_trainable_layers(run.classifier.model, None if epoch > run.n_layers else epoch)
    run.model.train()
    loss_sum, seen, shown_loss = torch.zeros((), device=accelerator.device), 0, None
    run.report(TrainProgress("fine-tune", epoch, run.epochs, 0, len(loader), seconds=run.seconds()))
    for step, batch in enumerate(loader, 1):
        loss, rows = _training_step(run, batch)
        loss_sum += loss.detach() * rows  # summed on the device: no GPU sync per step
        seen += rows
        if run.hooked and (step % 25 == 0 or step == len(loader)):
            shown_loss = loss_sum.item() / seen  # .item() waits for the device, so only now and then
        run.report(TrainProgress("fine-tune", epoch, run.epochs, step, len(loader), shown_loss,
                                 seconds=run.seconds()))
    epoch_loss = loss_sum.item()
    if accelerator.num_processes > 1:  # the loss over every process's rows, the same record everywhere
        totals = accelerator.reduce(torch.tensor([epoch_loss, seen], device=accelerator.device), reduction="sum")
        epoch_loss, seen = totals.tolist()
    return {"epoch": epoch, "phase": "fine-tune", "train_loss": round(epoch_loss / max(seen, 1), 4)}


def _training_step(run: _Run, batch: dict) -> tuple[torch.Tensor, int]:
    """One optimizer step on ``batch``; returns its loss and its number of rows."""
    accelerator, config = run.accelerator, run.config
    batch = {name: value.to(accelerator.device) for name, value in batch.items()}
    targets, batch_weights, batch_indices = batch.pop("labels"), batch.pop("weights"), batch.pop("indices")
    logits = run.model(**batch).logits
    scored = logits if run.offsets is None else logits + run.offsets
    scored = scored if run.allowed is None else scored.masked_fill(~run.allowed[batch_indices], float("-inf"))
    losses = nn.functional.cross_entropy(scored, targets, reduction="none", label_smoothing=config.label_smoothing)
    loss = (losses * batch_weights).sum() / batch_weights.sum()
    if run.loss.loss_fn is not None:
        loss = loss + run.loss.loss_fn(logits, targets, batch_indices)
    accelerator.backward(loss)
    if config.max_grad_norm:
        accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad()
    return loss, len(targets)


def _select_and_checkpoint(run: _Run, record: dict) -> bool:
    """Phases 3 and 4 after an epoch: validate and keep the best weights, record, checkpoint. Returns whether
    to stop early."""
    classifier, accelerator, result, epoch = run.classifier, run.accelerator, run.result, record["epoch"]
    if run.has_val:
        classifier.model = accelerator.unwrap_model(run.model)
        metrics = _validate_on_main(classifier, run.val_texts, run.val_labels, run.config, accelerator)
        record.update(metrics)
        if metrics["val_macro_f1"] > run.best_score:
            run.best_score, run.stale = metrics["val_macro_f1"], 0
            run.best_state = {k: v.detach().cpu().clone() for k, v in classifier.model.state_dict().items()}
            result.best_epoch = epoch
        else:
            run.stale += 1
    record["seconds"] = round(run.seconds(), 2)
    result.history.append(record)
    run.report(TrainProgress("fine-tune", epoch, run.epochs, len(run.loader), len(run.loader), record["train_loss"],
                             record.get("val_macro_f1"), done=True, seconds=record["seconds"]))
    logger.info("epoch %s: %s", epoch, record)
    if run.checkpoint_dir is not None:
        _save_checkpoint(run.checkpoint_dir, epoch=epoch, model=accelerator.unwrap_model(run.model),
                         optimizer=run.optimizer, scheduler=run.scheduler, best_state=run.best_state,
                         accelerator=accelerator,
                         state={"fingerprint": run.fingerprint, "history": result.history,
                                "best_score": run.best_score, "best_epoch": result.best_epoch, "stale": run.stale,
                                "seconds": run.seconds()})
    if run.has_val and run.stale >= run.config.patience:
        logger.info("stopping early: no validation improvement for %d epochs", run.config.patience)
        return True
    return False


def _finish(run: _Run) -> TrainResult:
    """Unfreeze everything, keep the best epoch's weights, score them, and leave the model in eval mode."""
    classifier, result = run.classifier, run.result
    if run.config.gradual_unfreeze:
        _set_trainable_layers(classifier.model, None)
    classifier.model = run.accelerator.unwrap_model(run.model)
    if run.best_state is not None:
        classifier.model.load_state_dict(run.best_state)
    if run.has_val:
        result.val_metrics = _validate_on_main(classifier, run.val_texts, run.val_labels, run.config, run.accelerator)
    elif result.best_epoch is None:
        result.best_epoch = run.epochs
    classifier.model.eval()
    result.seconds = round(run.seconds(), 2)
    return result


def _check_row_classes(row_classes, labels: list[str], label2id: dict, config: TrainConfig) -> np.ndarray:
    """``row_classes`` as a (rows, classes) bool array that holds every row's own label, or a ConfigError."""
    allowed = np.asarray(row_classes, dtype=bool)
    if allowed.shape != (len(labels), len(label2id)):
        raise ConfigError(f"row_classes has shape {allowed.shape}; expected (rows, classes) = "
                          f"({len(labels)}, {len(label2id)}), one row of class flags per training text")
    own = allowed[np.arange(len(labels)), [label2id[label] for label in labels]]
    if not own.all():
        first = int(np.flatnonzero(~own)[0])
        raise ConfigError(f"row_classes leaves out row {first}'s own label {labels[first]!r}; expected every "
                          "row's label among its classes")
    if config.label_smoothing:
        raise ConfigError("row_classes cannot be combined with label_smoothing (the smoothing would spread over "
                          "classes left out); set label_smoothing=0")
    return allowed


def log_class_counts(labels: list[str], classes: list[str]) -> np.ndarray:
    """log(rows of each class), a class without rows counted as one: the balanced-softmax logit offsets."""
    counts = Counter(labels)
    return np.log(np.array([max(counts.get(label, 0), 1) for label in classes], dtype=np.float32))


def _run_fingerprint(classifier: Classifier, texts: list[str], labels: list[str], row_weights: np.ndarray,
                     val_texts: list[str] | None, val_labels: list[str] | None, config: TrainConfig,
                     processes: int, row_classes: np.ndarray | None = None) -> dict:
    """What must not change between an interrupted run and its resumption."""
    digest = hashlib.sha256()
    for part in (texts, labels, val_texts or [], val_labels or []):
        digest.update(json.dumps(part).encode())
    digest.update(np.ascontiguousarray(row_weights, dtype=np.float32).tobytes())
    if row_classes is not None:
        digest.update(np.packbits(row_classes).tobytes())
    return {"settings": config.to_dict(), "labels": classifier.labels, "backbone": classifier.meta.backbone,
            "train_rows": len(texts), "val_rows": len(val_texts or []), "data_sha256": digest.hexdigest(),
            "processes": processes}


def _save_checkpoint(folder, *, epoch: int, model: nn.Module, optimizer, scheduler, best_state, accelerator,
                     state: dict) -> None:
    """Every process hands over its RNG state (a collective); the main process writes; all wait for it."""
    from accelerate.utils import gather_object

    from textshift import checkpoints

    rng = gather_object([checkpoints.capture_rng()])
    if accelerator.is_main_process:
        checkpoints.save_checkpoint(folder, epoch=epoch, model=checkpoints.cpu_state(model), best=best_state,
                                    optimizer=optimizer.state_dict(), rng=rng,
                                    state=state | {"scheduler": scheduler.state_dict()})
    accelerator.wait_for_everyone()


def _validate_on_main(classifier: Classifier, texts: list[str], labels: list[str], config: TrainConfig,
                      accelerator) -> dict:
    """Score on the main process and send the scores to every process, so all make the same decisions."""
    if accelerator.num_processes == 1:
        return _validate(classifier, texts, labels, config)
    from accelerate.utils import broadcast_object_list

    payload = [_validate(classifier, texts, labels, config) if accelerator.is_main_process else None]
    return broadcast_object_list(payload, from_process=0)[0]


def _validate(classifier: Classifier, texts: list[str], labels: list[str], config: TrainConfig) -> dict:
    predicted = classifier.predict(texts, max_length=config.max_length)
    return {f"val_{k}": round(v, 4) for k, v in score(labels, predicted).items()}


def as_text_data(data, argument: str):
    """``data`` as TextData: a file path or ``embedded:NAME`` is read; None stays None; anything else is refused."""
    from textshift.data import TextData, read_labeled

    if data is None or isinstance(data, TextData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_labeled(data)
    raise DataError(f"{argument} must be a TextData or a data file path; got a {type(data).__name__}. Use "
                    "TextData.from_lists(texts, labels) or read_labeled(path)")


def check_val_labels(labels: list[str], val_labels: list[str] | None) -> None:
    """Refuse validation rows that share no class with the training rows (every score would be 0)."""
    if val_labels is not None and not set(val_labels) & set(labels):
        raise DataError(f"none of the validation labels ({', '.join(sorted(set(val_labels))[:3])}…) is a training "
                        "label; expected validation data of the same classes. Check --val-data")


def deepcopy_classifier(classifier: Classifier) -> Classifier:
    """An independent copy (model weights included)."""
    return Classifier(copy.deepcopy(classifier.model), classifier.tokenizer, copy.deepcopy(classifier.meta))


def train_classifier(data, *, backbone: str | None = None, config: TrainConfig | None = None,
                     val_data=None, progress: ProgressFn | None = None, checkpoint_dir: str | os.PathLike | None = None,
                     resume: bool = False) -> tuple[Classifier, TrainResult]:
    """A new classifier on ``backbone`` trained on labelled :class:`~textshift.data.TextData` (or a data path).

    Returns the trained classifier (metadata filled in: data fingerprint, settings, validation metrics) and
    the training record. Nothing but checkpoints (see :func:`train`) is written to disk; call
    ``classifier.save(folder)``.
    """
    from textshift.data import check_trainable
    from textshift.model import DEFAULT_BACKBONE

    config = config or TrainConfig()
    data, val_data = as_text_data(data, "data"), as_text_data(val_data, "val_data")
    warnings = check_trainable(data)
    classifier = Classifier.from_backbone(backbone or DEFAULT_BACKBONE, labels=data.classes, seed=config.seed)
    result = train(classifier, data.texts, data.labels, config=config,
                   val_texts=val_data.texts if val_data is not None else None,
                   val_labels=val_data.labels if val_data is not None else None, progress=progress,
                   checkpoint_dir=checkpoint_dir, resume=resume)
    record_training(classifier, data, config, result, strategy="train", warnings=warnings)
    return classifier, result


def record_training(classifier: Classifier, data, config: TrainConfig, result: TrainResult, *, strategy: str,
                    warnings: list[str] | None = None, extra: dict | None = None) -> None:
    """Fill the classifier's metadata with what a user needs to trust it later."""
    meta = classifier.meta
    meta.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")  # a new model, not its source's copy
    meta.strategy = strategy
    meta.training_data = meta.training_data + [data.fingerprint.to_dict() | {"role": strategy}]
    meta.settings = config.to_dict()
    meta.metrics = {"validation": result.val_metrics, "best_epoch": result.best_epoch, "history": result.history,
                    "train_rows": result.train_rows, "val_rows": result.val_rows, "train_seconds": result.seconds}
    if result.lengths:
        meta.metrics["lengths"] = result.lengths
    if warnings:
        meta.extra.setdefault("warnings", []).extend(warnings)
    if extra:
        meta.extra.update(extra)
