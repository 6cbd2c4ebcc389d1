"""Texts longer than the model's length: cut at the length (``truncate``) or read whole in overlapping windows
(``chunks``).

In ``chunks`` mode a text's tokens are split into windows of the model's length that share ``overlap`` tokens
with their neighbours; each window gets the tokenizer's own special tokens (``[CLS] … [SEP]``, ``<s> … </s>``).
The model reads every window, and the windows' outputs are averaged into one output per text: the mean of the
logits at prediction, the mean of the head's inputs for :meth:`~textshift.model.Classifier.features`. In
training each window is a row carrying its text's label, weighted ``1 / windows`` so that every text counts
once whatever its length.

A text needing more than ``max_windows`` windows keeps ``max_windows`` of them spread evenly from its first
window to its last (the beginning and the end are always read), so memory and time per text are bounded
whatever its length; :class:`LengthReport` counts the texts this happened to.

Example
-------
>>> from textshift.windows import LongTexts, window_starts
>>> window_starts(300, content=126, long_texts=LongTexts(mode="chunks", overlap=26))
[0, 100, 174]
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np

from textshift.errors import ConfigError, ModelError

MODES = ("truncate", "chunks")
# Keys of the model settings (``textshift.json``) that hold a LongTexts.
SETTING_KEYS = {"mode": "long_texts", "overlap": "window_overlap", "max_windows": "max_windows"}


@dataclass(frozen=True)
class LongTexts:
    """How texts longer than ``max_length`` tokens are read.

    Attributes
    ----------
    mode : {"truncate", "chunks"}
        ``truncate`` (default) keeps each text's first tokens; ``chunks`` reads it whole in overlapping windows.
    overlap : int
        Tokens shared by consecutive windows (``chunks`` only), >= 0 and smaller than a window's text tokens.
    max_windows : int
        Most windows read per text (``chunks`` only); a longer text keeps this many, spread from its start to
        its end.
    """

    mode: str = "truncate"
    overlap: int = 32
    max_windows: int = 64

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"long_texts must be one of {', '.join(MODES)}; got {self.mode!r}. Pass "
                              "--long-texts truncate or --long-texts chunks")
        for name, low in (("overlap", 0), ("max_windows", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                flag = "--window-overlap" if name == "overlap" else "--max-windows"
                raise ConfigError(f"the window {name} must be a whole number >= {low}; got {value!r}. Pass e.g. "
                                  f"{flag} {32 if name == 'overlap' else 64}")

    @classmethod
    def from_settings(cls, settings: dict) -> LongTexts:
        """The setting saved in a model's ``textshift.json`` settings (``truncate`` for models saved before it)."""
        return cls(**{field: settings[key] for field, key in SETTING_KEYS.items() if key in settings})

    def to_settings(self) -> dict:
        return {key: getattr(self, field) for field, key in SETTING_KEYS.items()}

    def describe(self, max_length: int) -> str:
        """The setting in words, e.g. for ``textshift info``."""
        if self.mode == "truncate":
            return f"truncate (each text's first {max_length} tokens)"
        return f"chunks (windows of {max_length} tokens overlapping by {self.overlap}, at most " \
               f"{self.max_windows} per text, logits averaged)"

    def check(self, max_length: int, specials: int) -> None:
        """Raise ConfigError when ``overlap`` leaves a window of ``max_length`` tokens nothing new to read."""
        content = max_length - specials
        if self.mode == "chunks" and self.overlap >= content:
            raise ConfigError(f"window overlap {self.overlap} is not smaller than a window's {content} text tokens "
                              f"(max_length {max_length} minus {specials} special tokens); pass --window-overlap "
                              f"{max(0, content // 4)} or a larger --max-length")


@dataclass
class LengthReport:
    """How the texts fitted the model's length: counts a caller prints so that truncation is never silent.

    Attributes
    ----------
    mode : str
    max_length : int
        Tokens per window, special tokens included.
    texts : int
    over : int
        Texts with more tokens than ``max_length``.
    longest : int
        Tokens of the longest text (special tokens included).
    tokens_over : int
        Tokens beyond ``max_length``, summed over the texts that are longer.
    tokens_unread : int
        Tokens the model never saw: all of ``tokens_over`` when truncating; those between the windows kept
        when a text reached ``max_windows``.
    capped : int
        Texts that needed more than ``max_windows`` windows (``chunks`` only).
    windows : int
        Windows the model reads (one per text when truncating).
    """

    mode: str
    max_length: int
    texts: int = 0
    over: int = 0
    longest: int = 0
    tokens_over: int = 0
    tokens_unread: int = 0
    capped: int = 0
    windows: int = 0

    def add(self, other: LengthReport) -> LengthReport:
        """This report and ``other`` (of the same setting) together, as one."""
        return LengthReport(mode=self.mode, max_length=self.max_length, texts=self.texts + other.texts,
                            over=self.over + other.over, longest=max(self.longest, other.longest),
                            tokens_over=self.tokens_over + other.tokens_over,
                            tokens_unread=self.tokens_unread + other.tokens_unread,
                            capped=self.capped + other.capped, windows=self.windows + other.windows)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str | None:
        """One line for the user when some text did not fit in ``max_length`` tokens, else None."""
        if not self.over:
            return None
        share = f"{self.over} of {self.texts} texts are longer than {self.max_length} tokens (longest " \
                f"{self.longest}, {self.tokens_over / self.over:.0f} tokens over on average)"
        if self.mode == "truncate":
            return f"{share}: their ends ({self.tokens_unread} tokens in all) were cut. Pass --long-texts chunks " \
                   "to read whole texts"
        line = f"{share}: read in {self.windows} windows"
        if self.capped:
            line += f"; {self.capped} needed more than the window cap, so {self.tokens_unread} tokens between " \
                    "their kept windows were skipped (raise --max-windows to read more)"
        return line


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text's tokens (``[CLS]``/``[SEP]``, ``<s>``/``</s>``)."""
    probe = "hello world"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    raise ModelError(f"cannot tell the special tokens of the {type(tokenizer).__name__} tokenizer apart from a "
                     "text's tokens; expected a tokenizer that adds tokens around a text. Use another backbone")


def window_starts(n_tokens: int, *, content: int, long_texts: LongTexts) -> list[int]:
    """Where the windows of a text of ``n_tokens`` text tokens start, ``content`` tokens per window.

    ``truncate``: one window at 0. ``chunks``: every ``content - overlap`` tokens, the last one ending at the
    text's end; at most ``max_windows``, spread evenly from the first to the last.
    """
    if long_texts.mode == "truncate" or n_tokens <= content:
        return [0]
    step = content - long_texts.overlap
    starts = list(range(0, n_tokens - content, step)) + [n_tokens - content]
    if len(starts) > long_texts.max_windows:
        keep = np.unique(np.linspace(0, len(starts) - 1, long_texts.max_windows).round().astype(int))
        starts = [starts[i] for i in keep]
    return starts


def windows_needed(n_tokens: int, *, content: int, overlap: int) -> int:
    """Windows that cover ``n_tokens`` text tokens with no cap."""
    if n_tokens <= content:
        return 1
    return -(-(n_tokens - content) // (content - overlap)) + 1


class WindowEncoder:
    """Turns texts into model-input rows (windows) with the tokenizer's special tokens, and reports lengths.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    max_length : int
        Tokens per window, special tokens included.
    long_texts : LongTexts
    """

    def __init__(self, tokenizer, *, max_length: int, long_texts: LongTexts):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.long_texts = long_texts
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.content = max_length - len(self.prefix) - len(self.suffix)
        long_texts.check(max_length, len(self.prefix) + len(self.suffix))

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray, LengthReport]:
        """(windows as int32 id arrays, the text index of each window, the length report) for ``texts``."""
        report = LengthReport(mode=self.long_texts.mode, max_length=self.max_length, texts=len(texts))
        if not texts:
            return [], np.zeros(0, dtype=np.int64), report
        # verbose=False: the full length is wanted here, so no "longer than the maximum" warning
        token_rows = self.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False,
                                    return_token_type_ids=False, verbose=False)["input_ids"]
        prefix = np.asarray(self.prefix, dtype=np.int32)
        suffix = np.asarray(self.suffix, dtype=np.int32)
        rows: list[np.ndarray] = []
        owners: list[int] = []
        for index, tokens in enumerate(token_rows):
            n = len(tokens)
            total = n + len(prefix) + len(suffix)
            report.longest = max(report.longest, total)
            starts = window_starts(n, content=self.content, long_texts=self.long_texts)
            if total > self.max_length:
                report.over += 1
                report.tokens_over += total - self.max_length
                covered = sum(min(self.content, b - a) for a, b in pairwise(starts)) + min(self.content, n)
                report.tokens_unread += n - covered
                if self.long_texts.mode == "chunks" and len(starts) < windows_needed(
                        n, content=self.content, overlap=self.long_texts.overlap):
                    report.capped += 1
            tokens = np.asarray(tokens, dtype=np.int32)
            for start in starts:
                rows.append(np.concatenate([prefix, tokens[start:start + self.content], suffix]))
                owners.append(index)
        report.windows = len(rows)
        return rows, np.asarray(owners, dtype=np.int64), report


def mean_by_owner(values, owners, n_owners: int):
    """Rows of ``values`` (a torch tensor, shape (windows, d)) averaged per owner: shape (n_owners, d)."""
    import torch

    owners = torch.as_tensor(owners, device=values.device)
    sums = torch.zeros((n_owners, values.shape[1]), dtype=values.dtype, device=values.device)
    sums.index_add_(0, owners, values)
    counts = torch.zeros(n_owners, dtype=values.dtype, device=values.device)
    counts.index_add_(0, owners, torch.ones_like(owners, dtype=values.dtype))
    return sums / counts.clamp_min(1).unsqueeze(1)
