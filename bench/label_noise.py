"""Label-noise benchmark: how many deliberately flipped labels does `textshift inspect` find?

    python bench/label_noise.py [--seeds 0,1,2] [--scorers ensemble,logistic] [--fraction 0.05]

For each seed, 5% of the 3,000 `train` labels of the embedded US bills (`embedded:bills-train`) are changed at
random (seeded) to a different class, `textshift.inspect.inspect_data` runs with the default settings (real
all-MiniLM-L6-v2 encoder, 5-fold out-of-fold scores), and the flipped rows are looked up among the items flagged
as likely label errors, most likely first:

* precision_at_n: share of the top N flagged items that were flipped (N = number of flips);
* recall_at_2n: share of the flips found among the top 2N flagged items.

Each run is a fresh subprocess, so `seconds` (wall time of inspect_data: loading the encoder, embedding,
similarity search, out-of-fold scoring, cleanlab), `cpu_seconds` (CPU time of the same call, all threads; on
a shared machine it is steadier than wall time) and `peak_rss_mb` (the process's maximum resident memory)
belong to that run alone. `--scorers logistic` adds the baseline of logistic regression on the frozen
embeddings only. Results are appended to bench/results/label_noise.csv; finished (seed, scorer) pairs are skipped
on rerun.
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
from common import RESULTS, append_row, done_keys, machine  # noqa: E402

OUT = RESULTS / "label_noise.csv"
COLUMNS = ["seed", "n_flipped", "precision_at_n", "recall_at_2n", "seconds", "peak_rss_mb", "scorer", "flagged",
           "cpu_seconds", "machine"]


def flip_labels(labels: list[str], *, fraction: float, seed: int) -> tuple[list[str], list[int]]:
    """Change ``fraction`` of the labels, each to another class drawn uniformly; returns (labels, flipped rows)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    flipped = rng.choice(len(labels), int(round(fraction * len(labels))), replace=False).tolist()
    noisy = list(labels)
    for row in flipped:
        noisy[row] = str(rng.choice([c for c in classes if c != labels[row]]))
    return noisy, sorted(flipped)


def run_one(seed: int, scorer: str, fraction: float) -> dict:
    """One run, in this process: flip, inspect, score. Returns the result row."""
    from textshift.data import TextData, read_labeled
    from textshift.inspect import InspectConfig, inspect_data, label_errors

    bills = read_labeled("embedded:bills-train")
    noisy, flipped = flip_labels(bills.labels, fraction=fraction, seed=seed)
    data = TextData.from_lists(bills.texts, noisy, name=f"bills-train-flipped-{seed}.csv")
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    result = inspect_data(data, config=InspectConfig(scorer=scorer))
    seconds = time.perf_counter() - started
    ranked = label_errors(result)["row"].tolist()
    n = len(flipped)
    truth = set(flipped)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    return {"seed": seed, "n_flipped": n, "precision_at_n": round(len(truth & set(ranked[:n])) / n, 4),
            "recall_at_2n": round(len(truth & set(ranked[: 2 * n])) / n, 4), "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_kb / 1024, 1), "scorer": scorer, "flagged": len(ranked),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime - cpu_before, 1),
            "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scorers", default="ensemble", help="comma-separated: ensemble, logistic, fine-tune")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--one", nargs=2, metavar=("SEED", "SCORER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.fraction)))
        return
    done = done_keys(OUT, ["seed", "scorer"])
    for scorer in args.scorers.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if (str(seed), scorer) in done:
                print(f"seed {seed}, {scorer}: already in {OUT.name}")
                continue
            child = subprocess.run([sys.executable, __file__, "--one", str(seed), scorer, "--fraction",
                                    str(args.fraction)], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                   capture_output=True, text=True, check=False)
            if child.returncode != 0:
                sys.exit(f"seed {seed}, {scorer} failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            append_row(OUT, row, COLUMNS)
            print(f"seed {seed}, {scorer}: precision@N {row['precision_at_n']:.3f}, recall@2N "
                  f"{row['recall_at_2n']:.3f}, {row['seconds']:.0f}s, peak {row['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
