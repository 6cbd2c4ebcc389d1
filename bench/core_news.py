"""Core benchmark: textshift train (defaults, default backbone) vs TF-IDF + linear SVM vs frozen-embedding
logistic regression, trained on the same 80% of the news headlines and scored on the same held-out 20%.

Also checks that ``transformers.pipeline`` on the saved model gives the same top label as ``textshift predict``
on every row of the bills test split.

    python bench/core_news.py                              # resumable: finished methods are skipped
    python bench/core_news.py --verify textshift[min-val-100]  # train a stored row again, compare, write nothing

Writes bench/results/core_news.csv (method,accuracy,macro_f1,train_seconds,rows_train,rows_test,machine). A
``textshift[min-val-N]`` row is textshift trained with ``TrainConfig(min_val_rows=N)`` (the hold-out rule before
the current default); ``--verify METHOD`` trains that method again and prints whether it reproduces the stored
scores to the fourth decimal (for checking that a change of the code left training unchanged).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, WORK, append_row, done_keys, machine  # noqa: E402

from textshift.baselines import frozen_lr, tfidf_svm  # noqa: E402
from textshift.data import read_labeled  # noqa: E402
from textshift.evaluate import evaluate_predictions  # noqa: E402
from textshift.model import Classifier  # noqa: E402
from textshift.training import TrainConfig, stratified_holdout, train_classifier  # noqa: E402

OUT = RESULTS / "core_news.csv"
COLUMNS = ["method", "accuracy", "macro_f1", "train_seconds", "rows_train", "rows_test", "machine"]
MODEL = WORK / "news-model-80"


def verify(method: str, train, test) -> None:
    """Train a stored textshift row again and print whether it gives the stored scores."""
    import csv

    match = re.fullmatch(r"textshift(?:\[min-val-(\d+)\])?", method)
    if match is None:
        sys.exit(f"expected textshift or textshift[min-val-N]; got {method!r}")
    with open(OUT, newline="") as handle:
        stored = next((row for row in csv.DictReader(handle) if row["method"] == method), None)
    if stored is None:
        sys.exit(f"no row {method!r} in {OUT}; run the benchmark first")
    config = TrainConfig(min_val_rows=int(match.group(1))) if match.group(1) else TrainConfig()
    classifier, _ = train_classifier(train, config=config, progress=print)
    report = evaluate_predictions(test.labels, classifier.predict(test.texts), model_labels=train.classes)
    new = (round(report.accuracy, 4), round(report.macro_f1, 4))
    old = (float(stored["accuracy"]), float(stored["macro_f1"]))
    print(f"{method}: stored accuracy {old[0]:.4f} / macro-F1 {old[1]:.4f}, now {new[0]:.4f} / {new[1]:.4f}: "
          f"{'reproduced' if new == old else 'DIFFERENT'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", metavar="METHOD", help="train a stored textshift row again and compare")
    args = parser.parse_args()
    news = read_labeled("embedded:news")
    train_pos, test_pos = stratified_holdout(news.labels, 0.2, seed=0)
    train, test = news.subset(train_pos), news.subset(test_pos)
    if args.verify:
        verify(args.verify, train, test)
        return
    done = {k[0] for k in done_keys(OUT, ["method"])}

    def record(method: str, predicted: list[str], seconds: float) -> None:
        report = evaluate_predictions(test.labels, predicted, model_labels=train.classes)
        row = {"method": method, "accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4),
               "train_seconds": round(seconds, 1), "rows_train": len(train), "rows_test": len(test),
               "machine": machine()}
        append_row(OUT, row, COLUMNS)
        print(row, flush=True)

    if "tfidf-svm" not in done:
        started = time.perf_counter()
        record("tfidf-svm", tfidf_svm(train.texts, train.labels, test.texts), time.perf_counter() - started)
    if "frozen-lr" not in done:
        started = time.perf_counter()
        encoder = Classifier.from_backbone(labels=["a", "b"], seed=0)
        record("frozen-lr", frozen_lr(train.texts, train.labels, test.texts, encoder=encoder),
               time.perf_counter() - started)
    if "textshift" not in done:
        classifier, result = train_classifier(train, config=TrainConfig(), progress=print)
        classifier.save(MODEL, overwrite=True)
        probs = classifier.predict_proba(test.texts)
        record("textshift", [classifier.labels[i] for i in probs.argmax(1)], result.seconds)
    if "pipeline-agreement" not in done:
        from transformers import pipeline

        from textshift.predict import predict_texts

        bills = read_labeled("embedded:bills-test")
        ours = predict_texts(Classifier.load(MODEL), bills.texts).label.tolist()
        pipe = pipeline("text-classification", model=str(MODEL), device="cpu")
        theirs = [r["label"] for r in pipe(bills.texts, batch_size=64, truncation=True, max_length=128)]
        agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
        append_row(OUT, {"method": "pipeline-agreement", "accuracy": round(agree / len(ours), 4),
                         "macro_f1": "", "train_seconds": "", "rows_train": "", "rows_test": len(ours),
                         "machine": machine()}, COLUMNS)
        print(f"pipeline agrees with textshift predict on {agree}/{len(ours)} bills test rows", flush=True)


if __name__ == "__main__":
    main()
