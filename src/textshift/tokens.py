"""Token ids of a whole training set in two flat numpy arrays instead of Python lists.

A tokenizer returns a list of Python ints per text: about a kilobyte per 30-token title, so a million rows take
over a gigabyte before training starts. :class:`TokenizedTexts` tokenizes in chunks and keeps the ids as one
``int32`` array plus offsets (120 MB for a million 30-token rows). Above ``memmap_rows`` rows the ids go to a
temporary file that is memory-mapped, so the operating system pages them in as batches need them and the
process's own memory stays flat as the corpus grows. The file is deleted when the object is garbage-collected.

Batches are made here too: :class:`LengthGroupedBatches` draws random batches of similar-length rows and
:func:`pad_batch` pads them straight from the arrays to tensors.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from textshift.errors import ConfigError
from textshift.windows import LengthReport, LongTexts, WindowEncoder

CHUNK_ROWS = 8192
MEMMAP_ROWS = 200_000


class TokenizedTexts:
    """Token ids of model-input rows, addressable by row: ``tokens[i]`` -> int32 array.

    A row is a text cut at ``max_length`` tokens, or, with ``LongTexts(mode="chunks")``, one window of a text:
    ``owners[i]`` is the index of the text row ``i`` comes from, and ``report`` counts the texts longer than
    ``max_length`` (a :class:`~textshift.windows.LengthReport`).
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, *, folder: Path | None = None,
                 owners: np.ndarray | None = None, report: LengthReport | None = None):
        self.ids = ids
        self.offsets = offsets
        self.lengths = np.diff(offsets).astype(np.int32)
        self.owners = owners if owners is not None else np.arange(len(self.lengths))
        self.report = report
        self.folder = folder
        if folder is not None:
            weakref.finalize(self, shutil.rmtree, str(folder), True)

    @classmethod
    def build(cls, tokenizer, texts, *, max_length: int, long_texts: LongTexts | None = None,
              chunk_rows: int = CHUNK_ROWS, memmap_rows: int = MEMMAP_ROWS) -> TokenizedTexts:
        """Tokenize ``texts`` (any sequence of str) ``chunk_rows`` at a time, as ``long_texts`` says (default
        ``truncate``: the first ``max_length`` tokens of each text, special tokens included, as the tokenizer's
        own truncation gives).

        With more than ``memmap_rows`` texts the ids are written to a temporary file and memory-mapped.
        """
        encoder = WindowEncoder(tokenizer, max_length=max_length, long_texts=long_texts or LongTexts())
        n = len(texts)
        offsets = [np.zeros(1, dtype=np.int64)]
        owners: list[np.ndarray] = []
        report = LengthReport(mode=encoder.long_texts.mode, max_length=max_length)
        folder = Path(tempfile.mkdtemp(prefix="textshift-tokens-")) if n > memmap_rows else None
        parts: list[np.ndarray] = []
        handle = open(folder / "ids.int32", "wb") if folder is not None else None  # noqa: SIM115 (closed below)
        end = 0
        try:
            for start in range(0, n, chunk_rows):
                rows, chunk_owners, chunk_report = encoder.encode(list(texts[start:start + chunk_rows]))
                report = report.add(chunk_report)
                owners.append(chunk_owners + start)
                lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
                offsets.append(end + np.cumsum(lengths))
                end += int(lengths.sum())
                flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
                if handle is not None:
                    handle.write(flat.tobytes())
                else:
                    parts.append(flat)
        finally:
            if handle is not None:
                handle.close()
        offsets = np.concatenate(offsets)
        if folder is None:
            ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        elif offsets[-1] == 0:
            ids = np.zeros(0, dtype=np.int32)
        else:
            ids = np.memmap(folder / "ids.int32", dtype=np.int32, mode="r", shape=(int(offsets[-1]),))
        owners = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        return cls(ids, offsets, folder=folder, owners=owners, report=report)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, row: int) -> np.ndarray:
        return self.ids[self.offsets[row]:self.offsets[row + 1]]

    @property
    def nbytes(self) -> int:
        """Bytes held (in memory, or in the mapped file)."""
        return int(self.ids.nbytes + self.offsets.nbytes + self.lengths.nbytes + self.owners.nbytes)


def pad_batch(rows: list[np.ndarray], *, pad_id: int, padding_side: str = "right") -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` tensors for token-id rows, padded to the longest row."""
    width = max((len(row) for row in rows), default=0)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        if padding_side == "left":
            input_ids[i, width - len(row):] = row
            mask[i, width - len(row):] = 1
        else:
            input_ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


def pad_id_of(tokenizer) -> int:
    """The tokenizer's padding id (0 for tokenizers that define none, which the attention mask hides anyway)."""
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0


class LabelledRows(torch.utils.data.Dataset):
    """Training rows as (token ids, label id, weight, row index), read from a :class:`TokenizedTexts`."""

    def __init__(self, tokens: TokenizedTexts, label_ids: np.ndarray, weights: np.ndarray, indices: np.ndarray):
        self.tokens, self.label_ids, self.weights, self.indices = tokens, label_ids, weights, indices

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int):
        return self.tokens[i], self.label_ids[i], self.weights[i], self.indices[i]


class RowCollator:
    """Pads a list of :class:`LabelledRows` items into one batch: ids, mask, labels, weights, row indices."""

    def __init__(self, tokenizer):
        self.pad_id = pad_id_of(tokenizer)
        self.padding_side = getattr(tokenizer, "padding_side", "right")

    def __call__(self, items):
        batch = pad_batch([ids for ids, _, _, _ in items], pad_id=self.pad_id, padding_side=self.padding_side)
        batch["labels"] = torch.tensor(np.array([label for _, label, _, _ in items]), dtype=torch.long)
        batch["weights"] = torch.tensor(np.array([w for _, _, w, _ in items]), dtype=torch.float)
        batch["indices"] = torch.tensor(np.array([i for _, _, _, i in items]), dtype=torch.long)
        return batch


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Random batches of similar-length rows: shuffle, sort within windows of 50 batches, shuffle the batches.

    Padding (and so wasted compute) shrinks while every epoch still sees a different random order.
    Deterministic for a given seed; the epoch counter advances on each iteration.

    With ``num_shards > 1`` (one shard per process of a distributed run) every process draws the same batch
    order and keeps every ``num_shards``-th batch from ``shard_index`` on. Each shard yields the same number of
    batches, as DDP needs: the last round is filled up with batches from the start of the epoch, as
    ``DistributedSampler`` does. (Accelerate's own ``BatchSamplerShard`` assumes only the last batch is short;
    here the one short batch can be anywhere, and it would silently drop a round of batches.)
    """

    def __init__(self, lengths: list[int], batch_size: int, *, seed: int, window: int = 50, num_shards: int = 1,
                 shard_index: int = 0):
        if not 0 <= shard_index < num_shards:
            raise ConfigError(f"shard_index must be in [0, {num_shards}); got {shard_index}")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.window = window * batch_size
        self.num_shards = num_shards
        self.shard_index = shard_index
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.num_shards)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch``, in order, before sharding."""
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.window):
            window = order[start:start + self.window]
            window = window[np.argsort(-self.lengths[window], kind="stable")]
            batches.extend(window[i:i + self.batch_size].tolist() for i in range(0, len(window), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        batches = self.epoch_batches(self.epoch)
        self.epoch += 1
        if self.num_shards > 1 and batches:
            rounds = len(self) * self.num_shards
            batches = [batches[i % len(batches)] for i in range(rounds)][self.shard_index::self.num_shards]
        yield from batches
