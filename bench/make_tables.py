"""Print the Markdown tables of BENCHMARKS.md from bench/results/*.csv (so every figure there comes from a file
a benchmark script wrote).

    python bench/make_tables.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS  # noqa: E402


def markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def core() -> None:
    path = RESULTS / "core_news.csv"
    if path.exists():
        print("## core_news.csv\n")
        print(markdown(pd.read_csv(path).drop(columns=["machine"])))
        print()


def cell(values: pd.Series) -> str:
    """Mean ± half-width of the 95% t-interval (and the number of seeds)."""
    from scipy import stats

    if len(values) < 2:
        return f"{values.mean():.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.3f} ± {half:.3f} (n={len(values)})"


def transfer() -> None:
    path = RESULTS / "transfer_nyt_to_bills.csv"
    if not path.exists():
        return
    runs = pd.read_csv(path)
    table = runs.groupby(["strategy", "k"]).macro_f1.apply(cell).unstack("k").fillna("")
    table.columns = [f"k={k}" for k in table.columns]
    print("## transfer_nyt_to_bills.csv: macro-F1 on the 1,449 test bills (mean ± 95% t-interval over seeds)\n")
    print(markdown(table.reset_index()))
    seconds = runs.groupby(["strategy", "k"]).train_seconds.mean().round(0).unstack("k")
    seconds.columns = [f"k={k}" for k in seconds.columns]
    print("\n### mean training seconds\n")
    print(markdown(seconds.reset_index()))
    chosen = runs[runs.strategy == "recommended"].groupby("k").chosen.agg(lambda c: ", ".join(c.astype(str)))
    print("\n### strategy chosen as recommended (per seed)\n")
    print(markdown(chosen.reset_index()))
    print()


def stacked() -> None:
    path = RESULTS / "stacked_probe.csv"
    if not path.exists():
        return
    runs = pd.read_csv(path)
    table = runs.groupby(["variant", "k"], sort=False).macro_f1.apply(cell).reset_index()
    table["pseudo-labels (right)"] = runs.groupby(["variant", "k"], sort=False).apply(
        lambda g: "" if g.pseudo_rows.isna().all() else f"{g.pseudo_rows.mean():.0f} ({g.pseudo_accuracy.mean():.1%})",
        include_groups=False).values
    print(f"## stacked_probe.csv ({', '.join(runs.device.unique())}): macro-F1 on the 1,449 test bills\n")
    print(markdown(table))
    print()


def simple(name: str) -> None:
    path = RESULTS / name
    if path.exists():
        print(f"## {name}\n")
        print(markdown(pd.read_csv(path).drop(columns=["machine"], errors="ignore")))
        print()


if __name__ == "__main__":
    core()
    transfer()
    stacked()
    for name in ("predict_memory.csv", "label_noise.csv", "grow_bills.csv"):
        simple(name)
