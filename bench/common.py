"""Helpers shared by the benchmark scripts: resumable CSV results and timing."""

from __future__ import annotations

import csv
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / "work"


def done_keys(path: Path, key_columns: list[str]) -> set[tuple]:
    """Keys of rows already in a results CSV (so a rerun skips them)."""
    if not path.exists():
        return set()
    with open(path, newline="") as handle:
        return {tuple(row[c] for c in key_columns) for row in csv.DictReader(handle)}


def append_row(path: Path, row: dict, columns: list[str]) -> None:
    """Append one finished run (header on first write); flushed and fsynced so a kill loses nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"


def repeated_embedded(name: str, columns: list[str], rows: int) -> Path:
    """bench/work/NAME_xROWS.csv: the embedded dataset's ``columns``, repeated to ``rows`` rows (made once)."""
    path = WORK / f"{name}_x{rows}.csv"
    if not path.exists():
        import pandas as pd

        from textshift.data import embedded_path

        frame = pd.read_csv(embedded_path(name))[columns]
        repeated = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).head(rows)
        WORK.mkdir(parents=True, exist_ok=True)
        repeated.to_csv(path, index=False)
    return path
