"""Training data-path memory: peak RSS of holding a large training set's token ids, as lists or as textshift's
compact (memory-mapped) arrays.

    python bench/train_memory.py [--rows 100000,1000000]

For each size, news headlines are repeated to N rows and written to a CSV; then, in a fresh process per
measurement, the CSV is read with ``read_labeled`` and tokenized for training (max length 128) either

- ``lists``: ``tokenizer(texts)["input_ids"]``, the list of lists of Python ints that training held before
  :mod:`textshift.tokens` (and that most hand-written loops hold), or
- ``textshift``: ``TokenizedTexts.build`` (int32 arrays, memory-mapped above 200,000 rows),

and one epoch of length-grouped batches is padded from it (no model: this measures what the row count changes,
not the network). Peak RSS is sampled every 50 ms with psutil, the texts themselves included in both.

Writes bench/results/train_memory.csv (rows,storage,peak_rss_mb,token_bytes_mb,seconds,machine); finished
(rows, storage) pairs are skipped on rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, append_row, done_keys, machine, repeated_embedded  # noqa: E402

OUT = RESULTS / "train_memory.csv"
COLUMNS = ["rows", "storage", "peak_rss_mb", "token_bytes_mb", "seconds", "machine"]
MARK = "TRAIN_MEMORY "


def run_one(path: Path, storage: str) -> dict:
    import numpy as np
    from transformers import AutoTokenizer

    from textshift.data import read_labeled
    from textshift.model import DEFAULT_BACKBONE, resolve_backbone
    from textshift.tokens import LengthGroupedBatches, TokenizedTexts, pad_batch, pad_id_of

    started = time.perf_counter()
    data = read_labeled(str(path), label_column="topic")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(DEFAULT_BACKBONE))
    if storage == "lists":
        ids = tokenizer(data.texts, truncation=True, max_length=128)["input_ids"]
        lengths = [len(row) for row in ids]
        token_bytes = sum(sys.getsizeof(row) + sum(sys.getsizeof(i) for i in row) for row in ids[:1000])
        token_bytes = token_bytes * len(ids) / min(1000, len(ids))  # estimated from the first 1,000 rows
        row = lambda i: ids[i]  # noqa: E731
    else:
        tokens = TokenizedTexts.build(tokenizer, data.texts, max_length=128)
        lengths, token_bytes, row = tokens.lengths, tokens.nbytes, tokens.__getitem__
    sampler = LengthGroupedBatches(lengths, 32, seed=0)
    pad_id = pad_id_of(tokenizer)
    padded = 0
    for batch in sampler:
        padded += pad_batch([np.asarray(row(i)) for i in batch], pad_id=pad_id)["input_ids"].numel()
    return {"token_bytes_mb": round(token_bytes / 2**20, 1), "seconds": round(time.perf_counter() - started, 1),
            "padded_tokens": padded}


def measure(path: Path, storage: str) -> dict:
    import psutil

    proc = subprocess.Popen([sys.executable, __file__, "--one", str(path), storage], stdout=subprocess.PIPE,
                            text=True)
    handle, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, handle.memory_info().rss)
        time.sleep(0.05)
    lines = [line for line in proc.stdout.read().splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"measurement {path.name} {storage} failed (exit code {proc.returncode})")
    return json.loads(lines[-1][len(MARK):]) | {"peak_rss_mb": round(peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--storage", default="textshift,lists")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(MARK + json.dumps(run_one(Path(args.one[0]), args.one[1])), flush=True)
        return
    done = done_keys(OUT, ["rows", "storage"])
    for rows in (int(r) for r in args.rows.split(",")):
        for storage in args.storage.split(","):
            if (str(rows), storage) in done:
                continue
            result = measure(repeated_embedded("news", ["text", "topic"], rows), storage)
            row = {"rows": rows, "storage": storage, **{k: result[k] for k in COLUMNS[2:5]}, "machine": machine()}
            append_row(OUT, row, COLUMNS)
            print(row, flush=True)


if __name__ == "__main__":
    main()
