"""Label-noise benchmark: how many deliberately flipped labels does `textshift inspect` find?

    python bench/label_noise.py [--data bills,20news] [--noise random,confusable] [--rates 0.05,0.10]
                                [--seeds 0,1,2] [--news-rows 0]
    python bench/label_noise.py --table        # the mean over seeds, as in docs/cleaning.md

For every data x noise x rate x seed setting, a share ``rate`` of the labels is changed (seeded):

* ``random``: each flipped item gets another class drawn uniformly;
* ``confusable``: each flipped item gets the class a model most confuses it with: the most probable other class
  of the out-of-fold probabilities that TF-IDF + logistic regression and frozen embeddings + logistic regression
  (averaged, so neither is favoured) give on the clean labels, as people mislabel an item with a similar class.

Data: ``bills`` (the 3,000 embedded training bill titles) and ``20news`` (20news_train.csv.gz, long Usenet posts;
``--news-rows N`` takes a seeded stratified sample of N posts, 0 = all 11,285). Three scorers rank the items with
cleanlab (label quality, lowest first), all on the same folds and the same whole-text embeddings:

* ``default``: what `textshift inspect` does (the candidates of textshift.scorers.MEMBERS, stacked by out-of-fold
  log-loss with nested folds, averaged half and half with their plain mean);
* ``tfidf-lr``: logistic regression on TF-IDF words and word pairs alone;
* ``frozen-lr``: logistic regression on the frozen encoder's whole-text embeddings alone.

Metrics (N = number of flips): precision_at_n (share of the top N that were flipped), recall_at_2n (share of the
flips among the top 2N), auprc (average precision of the whole ranking), flagged (items cleanlab flags).
``seconds`` is the scoring time of that scorer (for the default: neighbour search, all candidates, stacking), not
counting the embedding pass: embeddings do not depend on labels, so they are computed once per dataset, kept in
bench/work/embeddings/, and their time is in ``embed_seconds``. Each setting runs in a fresh subprocess; frozen-lr,
then tfidf-lr, then the rest of the default run in it one after another, and ``peak_rss_mb`` is the process's peak
resident memory after each (so the default's peak covers all three). Each finished setting is appended to
bench/results/label_noise.csv and skipped on rerun. Rows from before these settings (scorers ``ensemble`` and
``logistic``, bills, random 5%, embedding included in ``seconds``) are kept.

Two more rows per setting come from the default's own estimates, at no extra cost (no ``seconds``): ``pool-only``
(the fitted pool alone) and ``mean-only`` (the plain mean of the members alone), the two halves of the default.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, append_row, done_keys, machine

OUT = RESULTS / "label_noise.csv"
COLUMNS = ["seed", "n_flipped", "precision_at_n", "recall_at_2n", "seconds", "peak_rss_mb", "scorer", "flagged",
           "cpu_seconds", "machine", "data", "noise", "rate", "rows", "auprc", "embed_seconds", "weights"]
KEY = ["data", "rows", "noise", "rate", "seed", "scorer"]
SCORERS = ("default", "tfidf-lr", "frozen-lr")
# The default with other shares of the fitted pool (textshift.scorers.FITTED_SHARE): the pool alone, the plain mean
SHARES = {"pool-only": 1.0, "mean-only": 0.0}
MAX_LENGTH, MAX_WINDOWS = 128, 4  # InspectConfig's defaults


# ../shared/data beside the checkout (or beside the folder of checkouts, for a git worktree)
NEWS = next((p for p in (Path(__file__).resolve().parents[i] / "shared" / "data" / "20news_train.csv.gz"
                         for i in (2, 3)) if p.exists()), Path("../shared/data/20news_train.csv.gz"))
EMBED_CACHE = WORK / "embeddings"


def load_dataset(name: str, rows: int = 0) -> tuple[list[str], list[str]]:
    """(texts, labels) of ``bills`` (the 3,000 embedded training bills) or ``20news`` (a seeded stratified sample
    of ``rows`` posts of 20news_train.csv.gz; all 11,285 when ``rows`` is 0)."""
    import pandas as pd

    if name == "bills":
        from textshift.data import read_labeled

        bills = read_labeled("embedded:bills-train")
        return list(bills.texts), list(bills.labels)
    frame = pd.read_csv(NEWS, keep_default_na=False, dtype=str)
    if rows and rows < len(frame):
        from sklearn.model_selection import train_test_split

        frame, _ = train_test_split(frame, train_size=rows, stratify=frame["label"], random_state=0)
        frame = frame.sort_index()
    return frame["text"].tolist(), frame["label"].tolist()


def cached_embeddings(name: str, texts: list[str], *, rows: int, max_length: int, max_windows: int
                      ) -> tuple[np.ndarray, np.ndarray, float]:
    """Whole-text embeddings of a dataset (they do not depend on labels), computed once and kept in
    bench/work/embeddings/. Returns (embeddings, read_fraction, seconds the embedding took)."""
    import numpy as np

    from textshift.inspection import embed_whole
    from textshift.model import DEFAULT_BACKBONE, Classifier

    path = EMBED_CACHE / f"{name}-{rows or 'all'}-{DEFAULT_BACKBONE}-{max_length}x{max_windows}.npz"
    if path.exists():
        stored = np.load(path, allow_pickle=False)
        if len(stored["embeddings"]) == len(texts):
            return stored["embeddings"], stored["read_fraction"], float(stored["seconds"])
    classifier = Classifier.from_backbone(DEFAULT_BACKBONE, labels=["a", "b"], seed=0)
    started = time.perf_counter()
    embeddings, read = embed_whole(classifier, texts, max_length=max_length, max_windows=max_windows)
    seconds = time.perf_counter() - started
    EMBED_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, embeddings=embeddings, read_fraction=read, seconds=np.float64(seconds))
    os.replace(tmp, path)
    return embeddings, read, seconds


def flip_labels(labels: list[str], *, fraction: float, seed: int) -> tuple[list[str], list[int]]:
    """Change ``fraction`` of the labels, each to another class drawn uniformly; returns (labels, flipped rows)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    flipped = rng.choice(len(labels), round(fraction * len(labels)), replace=False).tolist()
    noisy = list(labels)
    for row in flipped:
        noisy[row] = str(rng.choice([c for c in classes if c != labels[row]]))
    return noisy, sorted(flipped)


def confusable_targets(name: str, texts: list[str], labels: list[str], embeddings, *, rows: int) -> list[str]:
    """For every item, the other class a model most confuses it with (cached per dataset; no seed involved)."""
    import numpy as np

    from textshift.scorers import logistic_oof, tfidf_logistic_oof, word_features
    from textshift.training import stratified_folds

    classes = sorted(set(labels))
    path = EMBED_CACHE / f"{name}-{rows or 'all'}-confusable.npy"
    if path.exists():
        return [classes[i] for i in np.load(path, allow_pickle=False)]
    label_ids = np.array([classes.index(label) for label in labels])
    splits = stratified_folds(label_ids, 5, 0)
    probabilities = (tfidf_logistic_oof(word_features(texts), label_ids, n_classes=len(classes), splits=splits)
                     + logistic_oof(embeddings, label_ids, n_classes=len(classes), splits=splits)) / 2
    probabilities[np.arange(len(labels)), label_ids] = -1.0
    targets = probabilities.argmax(axis=1)
    EMBED_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, targets)
    os.replace(tmp, path)
    return [classes[i] for i in targets]


def flip_confusable(labels: list[str], targets: list[str], *, fraction: float, seed: int
                    ) -> tuple[list[str], list[int]]:
    """Change ``fraction`` of the labels (rows drawn at random) each to its most confused class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), round(fraction * len(labels)), replace=False).tolist()
    noisy = list(labels)
    for row in flipped:
        noisy[row] = targets[row]
    return noisy, sorted(flipped)


def ranking_scores(label_ids, probabilities, flipped: list[int]) -> dict:
    """cleanlab's ranking of the items, scored against the flipped rows."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    from textshift.inspection import _label_issues

    quality, issues = _label_issues(label_ids, probabilities)
    ranked = np.argsort(quality, kind="stable")
    truth = np.zeros(len(label_ids), dtype=bool)
    truth[flipped] = True
    n = len(flipped)
    return {"n_flipped": n, "precision_at_n": round(float(truth[ranked[:n]].mean()), 4),
            "recall_at_2n": round(float(truth[ranked[:2 * n]].sum() / n), 4),
            "auprc": round(float(average_precision_score(truth, -quality)), 4), "flagged": int(issues.sum())}


def run_setting(name: str, rows: int, noise: str, rate: float, seed: int) -> list[dict]:
    """One setting, in this process: flip, score with the three scorers, rank. Returns one row per scorer."""
    import numpy as np

    from textshift.inspection import nearest_neighbors
    from textshift.scorers import MEMBERS, candidate_estimates, stack_estimates
    from textshift.training import stratified_folds

    texts, labels = load_dataset(name, rows)
    embeddings, _, embed_seconds = cached_embeddings(name, texts, rows=rows, max_length=MAX_LENGTH,
                                                     max_windows=MAX_WINDOWS)
    if noise == "random":
        noisy, flipped = flip_labels(labels, fraction=rate, seed=seed)
    else:
        targets = confusable_targets(name, texts, labels, embeddings, rows=rows)
        noisy, flipped = flip_confusable(labels, targets, fraction=rate, seed=seed)
    classes = sorted(set(noisy))
    label_ids = np.array([classes.index(label) for label in noisy])
    splits = stratified_folds(label_ids, 5, 42)  # InspectConfig's folds and seed
    common = {"seed": seed, "data": name, "rows": rows or len(texts), "noise": noise, "rate": rate,
              "embed_seconds": round(embed_seconds, 1), "machine": machine()}

    def usage() -> tuple[float, float]:
        now = resource.getrusage(resource.RUSAGE_SELF)
        return now.ru_utime + now.ru_stime, now.ru_maxrss / 1024  # (CPU seconds, peak MB; ru_maxrss is in KB)

    out, candidates = [], []
    cpu_start, _ = usage()
    started = time.perf_counter()
    neighbor_indices, neighbor_sims = nearest_neighbors(embeddings, k=10)
    neighbor_seconds = time.perf_counter() - started
    for group in (("frozen-lr",), ("tfidf-lr",), tuple(m for m in MEMBERS if m not in ("frozen-lr", "tfidf-lr"))):
        cpu_before, _ = usage()
        found = candidate_estimates(texts, label_ids, n_classes=len(classes), splits=splits, embeddings=embeddings,
                                    neighbor_indices=neighbor_indices, neighbor_similarities=neighbor_sims,
                                    members=group, seed=42)
        cpu_after, peak = usage()
        candidates.extend(found)
        if len(group) == 1 and found:
            out.append(common | ranking_scores(label_ids, found[0].probabilities, flipped)
                       | {"scorer": group[0], "seconds": round(found[0].seconds, 1), "peak_rss_mb": round(peak, 1),
                          "cpu_seconds": round(cpu_after - cpu_before, 1), "weights": ""})
    probabilities, report = stack_estimates(candidates, label_ids, splits=splits)
    cpu_end, peak = usage()
    for scorer, share in SHARES.items():  # the default's two halves alone, from the same estimates
        shared, _ = stack_estimates(candidates, label_ids, splits=splits, fitted_share=share)
        out.append(common | ranking_scores(label_ids, shared, flipped)
                   | {"scorer": scorer, "seconds": "", "peak_rss_mb": "", "cpu_seconds": "", "weights": ""})
    out.append(common | ranking_scores(label_ids, probabilities, flipped)
               | {"scorer": "default", "seconds": round(time.perf_counter() - started, 1),
                  "peak_rss_mb": round(peak, 1), "cpu_seconds": round(cpu_end - cpu_start, 1),
                  "weights": json.dumps(report["weights"]), "neighbor_seconds": round(neighbor_seconds, 1)})
    return out


def migrate_results() -> None:
    """Give rows written before the data/noise/rate columns existed their values (bills, random, 0.05)."""
    if not OUT.exists():
        return
    with open(OUT, newline="") as handle:
        reader = csv.DictReader(handle)
        if set(COLUMNS) <= set(reader.fieldnames or []):
            return
        rows = list(reader)
    tmp = OUT.with_name(OUT.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({"data": "bills", "noise": "random", "rate": 0.05, "rows": 3000} | row)
    os.replace(tmp, OUT)


def results_table() -> str:
    """Markdown table of the mean over seeds of every data x noise x rate x scorer in the results (new rows)."""
    import pandas as pd

    frame = pd.read_csv(OUT)
    order = (SCORERS[0], *SHARES, *SCORERS[1:])
    frame = frame[frame["scorer"].isin(order)]
    keys = ["data", "rows", "noise", "rate", "scorer"]
    table = frame.groupby(keys, sort=False).agg(
        seeds=("seed", "nunique"), precision_at_n=("precision_at_n", "mean"), recall_at_2n=("recall_at_2n", "mean"),
        auprc=("auprc", "mean"), seconds=("seconds", "median"), peak_rss_mb=("peak_rss_mb", "max")).reset_index()
    table["scorer"] = pd.Categorical(table["scorer"], order)
    table = table.sort_values(["data", "rows", "noise", "rate", "scorer"], ascending=[True, False, True, True, True])
    lines = ["| data | noise | rate | scorer | seeds | precision@N | recall@2N | AUPRC | seconds (median) | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        data = f"{row.data} ({row.rows:,})"
        cost = ("– | –" if pd.isna(row.seconds)  # the shares' rows reuse the default's estimates
                else f"{row.seconds:.0f} | {row.peak_rss_mb:,.0f}")
        lines.append(f"| {data} | {row.noise} | {row.rate:.2f} | {row.scorer} | {row.seeds} | "
                     f"{row.precision_at_n:.3f} | {row.recall_at_2n:.3f} | {row.auprc:.3f} | {cost} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bills,20news")
    parser.add_argument("--noise", default="random,confusable")
    parser.add_argument("--rates", default="0.05,0.10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--news-rows", type=int, default=0, help="20news posts to sample (0: all 11,285)")
    parser.add_argument("--one", nargs=5, metavar=("DATA", "ROWS", "NOISE", "RATE", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true", help="print the results as a markdown table and stop")
    args = parser.parse_args()
    if args.table:
        print(results_table())
        return
    if args.one:
        name, rows, noise, rate, seed = args.one
        print(json.dumps(run_setting(name, int(rows), noise, float(rate), int(seed))))
        return
    migrate_results()
    done = done_keys(OUT, KEY)
    for seed in args.seeds.split(","):  # every setting's first seed before any second seed
        for noise in args.noise.split(","):
            for rate in args.rates.split(","):
                for name in args.data.split(","):
                    rows = args.news_rows if name == "20news" else 0
                    shown_rows = str(rows) if rows else ("3000" if name == "bills" else "11285")
                    label = f"{name} {noise} {float(rate):.2f} seed {seed}"
                    if all((name, shown_rows, noise, str(float(rate)), seed, scorer) in done
                           for scorer in (*SCORERS, *SHARES)):
                        print(f"{label}: already in {OUT.name}")
                        continue
                    child = subprocess.run([sys.executable, __file__, "--one", name, str(rows), noise, rate, seed],
                                           env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                                           text=True, check=False)
                    if child.returncode != 0:
                        sys.exit(f"{label} failed:\n{child.stderr[-3000:]}")
                    for row in json.loads(child.stdout.strip().splitlines()[-1]):
                        if (name, shown_rows, noise, str(float(rate)), seed, row["scorer"]) in done:
                            continue  # this scorer's row is stored already (the others were missing)
                        append_row(OUT, row, COLUMNS)
                        cost = (f", {row['seconds']:.0f}s, peak {row['peak_rss_mb']:.0f} MB"
                                if row["seconds"] != "" else "")
                        print(f"{label}, {row['scorer']}: precision@N {row['precision_at_n']:.3f}, recall@2N "
                              f"{row['recall_at_2n']:.3f}, AUPRC {row['auprc']:.3f}{cost}", flush=True)


if __name__ == "__main__":
    main()
