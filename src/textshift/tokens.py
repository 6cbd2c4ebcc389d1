"""Token ids of a whole training set in two flat numpy arrays instead of Python lists.

A tokenizer returns a list of Python ints per text: about a kilobyte per 30-token title, so a million rows take
over a gigabyte before training starts. :class:`TokenizedTexts` tokenizes in chunks and keeps the ids as one
``int32`` array plus offsets (120 MB for a million 30-token rows). Above ``memmap_rows`` rows the ids go to a
temporary file that is memory-mapped, so the operating system pages them in as batches need them and the
process's own memory stays flat as the corpus grows. The file is deleted when the object is garbage-collected.

Batches are padded here too (:func:`pad_batch`), straight from the arrays to tensors.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

CHUNK_ROWS = 8192
MEMMAP_ROWS = 200_000


class TokenizedTexts:
    """Token ids of ``texts`` (truncated to ``max_length``), addressable by row: ``tokens[i]`` -> int32 array."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, *, folder: Path | None = None):
        self.ids = ids
        self.offsets = offsets
        self.lengths = np.diff(offsets).astype(np.int32)
        self.folder = folder
        if folder is not None:
            weakref.finalize(self, shutil.rmtree, str(folder), True)

    @classmethod
    def build(cls, tokenizer, texts, *, max_length: int, chunk_rows: int = CHUNK_ROWS,
              memmap_rows: int = MEMMAP_ROWS) -> TokenizedTexts:
        """Tokenize ``texts`` (any sequence of str) ``chunk_rows`` at a time.

        With more than ``memmap_rows`` rows the ids are written to a temporary file and memory-mapped.
        """
        n = len(texts)
        offsets = np.zeros(n + 1, dtype=np.int64)
        folder = Path(tempfile.mkdtemp(prefix="textshift-tokens-")) if n > memmap_rows else None
        parts: list[np.ndarray] = []
        handle = open(folder / "ids.int32", "wb") if folder is not None else None
        try:
            for start in range(0, n, chunk_rows):
                rows = tokenizer(list(texts[start:start + chunk_rows]), truncation=True, max_length=max_length,
                                 return_attention_mask=False, return_token_type_ids=False)["input_ids"]
                lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
                offsets[start + 1:start + 1 + len(rows)] = offsets[start] + np.cumsum(lengths)
                flat = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(lengths.sum()))
                if handle is not None:
                    handle.write(flat.tobytes())
                else:
                    parts.append(flat)
        finally:
            if handle is not None:
                handle.close()
        if folder is None:
            ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        elif offsets[-1] == 0:
            ids = np.zeros(0, dtype=np.int32)
        else:
            ids = np.memmap(folder / "ids.int32", dtype=np.int32, mode="r", shape=(int(offsets[-1]),))
        return cls(ids, offsets, folder=folder)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, row: int) -> np.ndarray:
        return self.ids[self.offsets[row]:self.offsets[row + 1]]

    @property
    def nbytes(self) -> int:
        """Bytes held (in memory, or in the mapped file)."""
        return int(self.ids.nbytes + self.offsets.nbytes + self.lengths.nbytes)


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

