"""How long does `textshift inspect` take on many long documents, and how much memory does it use?

    python bench/inspect_long.py [--rows 10000] [--seed 0]

Takes a seeded sample of ``--rows`` posts of ../shared/data/20news_train.csv.gz (long Usenet posts, 20 classes;
median 143 words, 10% over 470), writes it to bench/work/inspect-long/, and runs the command a user would run,
``textshift inspect POSTS.csv -o REPORT`` with every default (whole texts read in up to 4 windows of 128 tokens,
the stacked scorer, 5 folds), in a child process. It records the wall-clock seconds, the child's peak resident
memory and CPU seconds, and from the report's summary.json the time spent embedding and scoring, the share of
each text that was read and the scorer's out-of-fold accuracy. One row per run is appended to
bench/results/inspect_long.csv (rerunning adds another row: the figure is a timing, so every run is kept).
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
from common import RESULTS, WORK, append_row, machine
from label_noise import NEWS

OUT = RESULTS / "inspect_long.csv"
COLUMNS = ["rows", "seed", "seconds", "peak_rss_mb", "cpu_seconds", "embed_seconds", "scoring_seconds",
           "mean_fraction_read", "texts_cut", "out_of_fold_accuracy", "scorer", "machine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="posts to inspect (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    args = parser.parse_args()
    import pandas as pd

    posts = pd.read_csv(NEWS)
    if not 1 <= args.rows <= len(posts):
        raise SystemExit(f"expected --rows between 1 and {len(posts):,}; got {args.rows}")
    folder = WORK / "inspect-long"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"posts-{args.rows}-seed{args.seed}.csv"
    posts.sample(args.rows, random_state=args.seed)[["text", "label"]].to_csv(data, index=False)
    report = folder / f"report-{args.rows}-seed{args.seed}"
    environment = os.environ | {"HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "textshift", "inspect", str(data), "-o", str(report),
                            "--overwrite", "--quiet"], env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"textshift inspect failed ({child.returncode}): {child.stderr.strip()[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads((report / "summary.json").read_text())["summary"]
    row = {"rows": args.rows, "seed": args.seed, "seconds": round(seconds, 1),
           "peak_rss_mb": round(usage.ru_maxrss / 1024), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
           "embed_seconds": summary["embed_seconds"], "scoring_seconds": summary["scoring_seconds"],
           "mean_fraction_read": summary["text_read"]["mean_fraction"], "texts_cut": summary["text_read"]["texts_cut"],
           "out_of_fold_accuracy": summary["out_of_fold_accuracy"], "scorer": summary["scorer"]["choice"],
           "machine": machine()}
    append_row(OUT, row, COLUMNS)
    print(row)


if __name__ == "__main__":
    main()
