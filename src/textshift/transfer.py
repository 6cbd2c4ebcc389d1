"""Transfer strategies: ways to carry a source classifier over to a target dataset.

Each strategy composes the model (:mod:`textshift.model`) and the training loop (:mod:`textshift.training`);
neither knows about strategies.

=============  =========================================================================================
strategy       what it does
=============  =========================================================================================
``scratch``    the pretrained backbone, trained on the target only (what you do without a source model)
``finetune``   the whole source classifier fine-tuned on the target; head rows of classes shared by name
               are carried over, new classes start from the mean feature of their examples, classes absent
               from the target are dropped (``keep_source_classes=True`` keeps them)
``encoder``    the source encoder with a fresh head (for targets whose classes differ)
``adapt``      masked-LM pretraining of the source encoder on unlabelled target text, then ``finetune``
``joint``      the source classifier trained on source and target rows together, target rows up-weighted
``zero-shot``  the source model as is, restricted to the classes it shares with the target
=============  =========================================================================================

The tokenizer always travels with the model: every strategy uses the source model's own tokenizer (``scratch``
uses the backbone's).

Example
-------
>>> from textshift.data import read_labeled
>>> from textshift.model import Classifier
>>> from textshift.transfer import transfer
>>> source = Classifier.load("news-model")                                     # doctest: +SKIP
>>> bills = read_labeled("embedded:bills-train").subset(range(200))            # doctest: +SKIP
>>> model, result = transfer(source, bills, strategy="finetune")              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from textshift.adapt import AdaptConfig, adapt_language_model
from textshift.checkpoints import latest_checkpoint
from textshift.data import TextData, check_trainable, read_labeled
from textshift.errors import ConfigError, DataError
from textshift.model import Classifier
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
from textshift.validation import check_types

logger = logging.getLogger(__name__)

STRATEGIES = ("scratch", "finetune", "encoder", "adapt", "joint", "zero-shot")
DEFAULT_STRATEGY = "finetune"
STRATEGY_HELP = {
    "scratch": "the pretrained backbone trained on the target only",
    "finetune": "the whole source classifier fine-tuned on the target (labels matched by name)",
    "encoder": "the source encoder with a fresh head",
    "adapt": "masked-LM pretraining on target text, then finetune",
    "joint": "source and target rows together, target up-weighted",
    "zero-shot": "the source model as is, on the shared classes",
}


@dataclass
class TransferConfig:
    """Settings of one transfer run (saved in the model's ``textshift.json``).

    Attributes
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    train : TrainConfig
        Fine-tuning settings.
    adapt : AdaptConfig
        Masked-LM settings of the ``adapt`` strategy.
    keep_source_classes : bool
        ``finetune``/``adapt``/``joint``: keep head rows of source classes absent from the target.
    joint_target_weight : float or None
        ``joint``: loss weight of a target row relative to a source row; None balances the two sets' total
        weights (``n_source / n_target``), at least 1.
    backbone : str or None
        ``scratch``: backbone to start from; None uses the source model's backbone.
    """

    strategy: str = DEFAULT_STRATEGY
    train: TrainConfig = field(default_factory=TrainConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    keep_source_classes: bool = False
    joint_target_weight: float | None = None
    backbone: str | None = None

    def __post_init__(self) -> None:
        check_types(self)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy '{self.strategy}'; expected one of {', '.join(STRATEGIES)}")
        if self.joint_target_weight is not None and self.joint_target_weight <= 0:
            raise ConfigError(f"the 'joint_target_weight' setting must be > 0; got {self.joint_target_weight}")

    def to_dict(self) -> dict:
        return asdict(self)


def source_training_data(source: Classifier) -> TextData | None:
    """The source model's training data, when its fingerprint still matches a readable file (or embedded data)."""
    for item in source.meta.training_data:
        path = item.get("path")
        if not path:
            continue
        try:
            data = read_labeled(path)
        except (DataError, OSError):
            continue
        if data.fingerprint.sha256 == item.get("sha256"):
            return data
    return None


def _mean_features(classifier: Classifier, texts: list[str], labels: list[str], wanted: set[str],
                   max_length: int) -> dict[str, np.ndarray]:
    positions = [i for i, label in enumerate(labels) if label in wanted]
    if not positions:
        return {}
    features = classifier.features([texts[i] for i in positions], max_length=max_length)
    rows: dict[str, list[np.ndarray]] = {}
    for vector, i in zip(features, positions, strict=True):
        rows.setdefault(labels[i], []).append(vector)
    return {label: np.mean(vectors, axis=0) for label, vectors in rows.items()}


def prepare_model(source: Classifier, target: TextData, config: TransferConfig) -> Classifier:
    """The untrained starting point of a strategy: a new model object; ``source`` is not modified."""
    target_classes = target.classes
    strategy = config.strategy
    if strategy == "scratch":
        backbone = config.backbone or source.meta.backbone
        model = Classifier.from_backbone(backbone, labels=target_classes, seed=config.train.seed)
        if model.meta.backbone != backbone:  # pragma: no cover - defensive
            model.meta.backbone = backbone
        return model
    shared = [label for label in target_classes if label in source.label2id]
    if strategy in ("finetune", "adapt", "zero-shot") and not shared:
        raise DataError(f"the target's classes ({', '.join(target_classes[:4])}…) share no name with the source "
                        f"model's ({', '.join(source.labels[:4])}…); expected at least one common class for "
                        f"'{strategy}'. Use --strategy encoder to reuse only the encoder")
    model = deepcopy_classifier(source)
    model.meta.source_model = str(source.path or source.meta.backbone)
    max_length = config.train.max_length
    if strategy == "zero-shot":
        model.replace_head(shared, keep_rows=True)
        return model
    if strategy == "encoder":
        import torch

        torch.manual_seed(config.train.seed)
        model.replace_head(target_classes, keep_rows=False)
        return model
    labels = list(target_classes)
    if config.keep_source_classes or strategy == "joint":
        labels = [label for label in source.labels if label not in labels] + labels
    new = set(labels) - set(source.labels)
    init_rows = _mean_features(model, target.texts, target.labels, new, max_length) if new else None
    import torch

    torch.manual_seed(config.train.seed)
    model.replace_head(labels, keep_rows=True, init_rows=init_rows)
    return model


def transfer(source: Classifier | str | os.PathLike, target: TextData | str | os.PathLike, *,
             strategy: str | None = None, config: TransferConfig | None = None, source_data: TextData | None = None,
             unlabeled_texts: list[str] | None = None, val_data: TextData | None = None,
             progress: ProgressFn | None = None, checkpoint_dir: str | os.PathLike | None = None,
             resume: bool = False) -> tuple[Classifier, TrainResult]:
    """Carry ``source`` over to labelled ``target`` data with one strategy.

    Parameters
    ----------
    source : Classifier or path
        The trained source classifier (its tokenizer travels with it), or its folder.
    target : TextData or path
        Labelled target rows (or a data file / ``embedded:NAME``).
    strategy : str, optional
        Overrides ``config.strategy``.
    config : TransferConfig, optional
    source_data : TextData, optional
        ``joint`` only: the source's labelled rows; default: the source model's training file, if its
        fingerprint still matches.
    unlabeled_texts : list of str, optional
        ``adapt`` only: extra unlabelled target-domain texts for masked-LM pretraining.
    val_data : TextData, optional
        Validation rows for model selection (default: a split of ``target`` when large enough).
    checkpoint_dir, resume
        Epoch checkpoints of the fine-tuning phase and resuming from them, as in
        :func:`textshift.training.train`; the strategy and source model must be the interrupted run's. An
        ``adapt`` run resumed from a checkpoint skips its masked-LM phase (the checkpoint holds its result).

    Returns
    -------
    (Classifier, TrainResult)
        The new model (metadata filled in) and its training record. ``source`` is left unchanged.
    """
    config = config or TransferConfig()
    if isinstance(source, (str, os.PathLike)):
        source = load_source(source)
    if not isinstance(source, Classifier):
        raise ConfigError(f"source must be a Classifier or a model folder path; got a {type(source).__name__}")
    target, source_data, val_data = (as_text_data(target, "target"), as_text_data(source_data, "source_data"),
                                     as_text_data(val_data, "val_data"))
    if isinstance(unlabeled_texts, str):
        raise DataError("unlabeled_texts must be a list of texts; got one string. Wrap it in a list")
    if strategy is not None and strategy != config.strategy:
        config = TransferConfig(**{**config.__dict__, "strategy": strategy})
    warnings = check_trainable(target) if config.strategy != "zero-shot" else []
    extra: dict = {}
    model = prepare_model(source, target, config)
    texts, labels, weights = target.texts, target.labels, None
    if config.strategy == "zero-shot":
        result = TrainResult(train_rows=0)
    else:
        resuming = resume and checkpoint_dir is not None and latest_checkpoint(checkpoint_dir) is not None
        if config.strategy == "adapt" and resuming:
            extra["adapt"] = {"resumed": "the masked-LM phase finished before the interruption"}
        elif config.strategy == "adapt":
            corpus = list(dict.fromkeys(target.texts + list(unlabeled_texts or [])))
            extra["adapt"] = adapt_language_model(model, corpus, config=config.adapt, progress=bool(progress))
        if config.strategy == "joint":
            source_data = source_data or source_training_data(source)
            if source_data is None:
                raise DataError("the 'joint' strategy needs the source's labelled data, and the source model's "
                                "training file cannot be found (or changed); pass --source-data FILE")
            weight = config.joint_target_weight or max(1.0, len(source_data) / max(1, len(target)))
            texts = source_data.texts + target.texts
            labels = source_data.labels + target.labels
            weights = [1.0] * len(source_data) + [float(weight)] * len(target)
            extra["joint"] = {"source_rows": len(source_data), "target_weight": round(weight, 3)}
        result = train(model, texts, labels, config=config.train, loss=LossShaping(weights=weights),
                       val_texts=val_data.texts if val_data is not None else None,
                       val_labels=val_data.labels if val_data is not None else None, progress=progress,
                       checkpoint_dir=checkpoint_dir, resume=resume,
                       run_tag={"strategy": config.strategy, "source_created": source.meta.created,
                                "adapt": config.adapt.to_dict() if config.strategy == "adapt" else None})
        if config.strategy == "joint" and not config.keep_source_classes:
            model.replace_head(target.classes, keep_rows=True)
    record_training(model, target, config.train, result, strategy=config.strategy, warnings=warnings,
                    extra=extra | {"transfer": {k: v for k, v in config.to_dict().items() if k != "train"}})
    if config.strategy == "joint" and source_data is not None:
        model.meta.training_data.insert(-1, source_data.fingerprint.to_dict() | {"role": "joint-source"})
    return model, result


def load_source(path: str | os.PathLike) -> Classifier:
    """Load a source model folder (its ``path`` says where it came from)."""
    return Classifier.load(path)
