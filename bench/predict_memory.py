"""Predict memory benchmark: peak RSS of `textshift predict` on the bills repeated to N rows.

    python bench/predict_memory.py [--rows 20000,200000] [--model bench/work/news-model-80]
    python bench/predict_memory.py --small-model --rows 100000,1000000

The model defaults to the one bench/core_news.py saves (all-MiniLM-L6-v2 with a head; about 130 bill titles a
second on 2 cores, so a million rows would take two hours). ``--small-model`` instead saves a randomly initialised
1-layer, 64-wide BERT with the real MiniLM tokenizer (30,522 word pieces): reading, tokenizing, batching and
writing are the same as with the real model, the network is nearly free, so a million rows take minutes. It
measures what the row count can change (the data path); the real model adds a fixed amount for its weights.

Peak RSS is the maximum resident set size of the predict process (and its children), sampled every 50 ms with
psutil. Writes bench/results/predict_memory.csv (rows,seconds,rows_per_second,peak_rss_mb,chunk_size,model,
machine); finished (rows, model) pairs are skipped on rerun.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, append_row, done_keys, machine, repeated_embedded  # noqa: E402

OUT = RESULTS / "predict_memory.csv"
COLUMNS = ["rows", "seconds", "rows_per_second", "peak_rss_mb", "chunk_size", "model", "machine"]
SMALL_MODEL = WORK / "predict-memory-small-model"


def small_model() -> Path:
    """Save (once) the 1-layer random BERT with MiniLM's tokenizer described in the module doc."""
    if (SMALL_MODEL / "textshift.json").exists():
        return SMALL_MODEL
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from textshift.data import read_labeled
    from textshift.model import DEFAULT_BACKBONE, Classifier, ModelMeta, resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(DEFAULT_BACKBONE))
    labels = read_labeled("embedded:news").classes
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    Classifier(model, tokenizer, ModelMeta(backbone="random 1-layer BERT", labels=labels)).save(SMALL_MODEL,
                                                                                              overwrite=True)
    return SMALL_MODEL


def measure(model: Path, data: Path, chunk_size: int) -> tuple[float, float]:
    out = data.with_suffix(".pred.csv")
    for stale in (out, out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.partial.json")):
        stale.unlink(missing_ok=True)  # a run killed earlier; this measures a whole run from the first row
    cmd = [sys.executable, "-m", "textshift", "predict", str(model), str(data), "-o", str(out),
           "--chunk-size", str(chunk_size), "-q"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    handle = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = handle.memory_info().rss + sum(c.memory_info().rss for c in handle.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"predict failed with exit code {proc.returncode}")
    out.unlink(missing_ok=True)
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="20000,200000")
    parser.add_argument("--model", default=str(WORK / "news-model-80"))
    parser.add_argument("--small-model", action="store_true",
                        help="use a random 1-layer BERT with the real tokenizer (see above) instead of --model")
    parser.add_argument("--chunk-size", type=int, default=4096)
    args = parser.parse_args()
    model = small_model() if args.small_model else Path(args.model)
    model_name = "small-random" if args.small_model else "minilm"
    done = set(done_keys(OUT, ["rows", "model"]))
    for rows in (int(r) for r in args.rows.split(",")):
        if (str(rows), model_name) in done:
            continue
        seconds, peak_mb = measure(model, repeated_embedded("bills", ["id", "text"], rows), args.chunk_size)
        row = {"rows": rows, "seconds": round(seconds, 1), "rows_per_second": round(rows / seconds, 1),
               "peak_rss_mb": round(peak_mb, 1), "chunk_size": args.chunk_size, "model": model_name,
               "machine": machine()}
        append_row(OUT, row, COLUMNS)
        print(row, flush=True)


if __name__ == "__main__":
    main()
