"""Predict memory benchmark: peak RSS of `textshift predict` on the bills repeated to 20k and 200k rows.

    python bench/predict_memory.py [--rows 20000,200000] [--model bench/work/news-model-80]

The model defaults to the one bench/core_news.py saves. Peak RSS is the maximum resident set size of the
predict process (and its children), sampled every 50 ms with psutil. Writes bench/results/predict_memory.csv
(rows,seconds,rows_per_second,peak_rss_mb,chunk_size,machine); finished sizes are skipped on rerun.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, append_row, done_keys, machine  # noqa: E402

OUT = RESULTS / "predict_memory.csv"
COLUMNS = ["rows", "seconds", "rows_per_second", "peak_rss_mb", "chunk_size", "machine"]


def make_input(rows: int) -> Path:
    path = WORK / f"bills_x{rows}.csv"
    if not path.exists():
        from textshift.data import embedded_path

        bills = pd.read_csv(embedded_path("bills"))[["id", "text"]]
        repeated = pd.concat([bills] * (rows // len(bills) + 1), ignore_index=True).head(rows)
        WORK.mkdir(parents=True, exist_ok=True)
        repeated.to_csv(path, index=False)
    return path


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
    parser.add_argument("--chunk-size", type=int, default=4096)
    args = parser.parse_args()
    done = {k[0] for k in done_keys(OUT, ["rows"])}
    for rows in (int(r) for r in args.rows.split(",")):
        if str(rows) in done:
            continue
        seconds, peak_mb = measure(Path(args.model), make_input(rows), args.chunk_size)
        row = {"rows": rows, "seconds": round(seconds, 1), "rows_per_second": round(rows / seconds, 1),
               "peak_rss_mb": round(peak_mb, 1), "chunk_size": args.chunk_size, "machine": machine()}
        append_row(OUT, row, COLUMNS)
        print(row, flush=True)


if __name__ == "__main__":
    main()
