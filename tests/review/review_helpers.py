"""Helpers of the review tests: a scores table made without a model, a store, a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import TextData, read_labeled
from textshift.review.store import ReviewStore, default_store_path

SCRIPT_TEXT = "<script>alert(1)</script> A bill to <b>amend</b> & protect"
CLASSES = ["Defense", "Education", "Health"]


def fake_items(data: TextData, *, suspicious_every: int = 2, seed: int = 0) -> pd.DataFrame:
    """An inspect items table with made-up scores: every ``suspicious_every``-th row is suspicious."""
    rng = np.random.default_rng(seed)
    n = len(data)
    labels = data.frame["label"].tolist() if data.has_labels else [None] * n
    classes = sorted(set(labels)) if data.has_labels else []
    score = rng.random(n).round(4)
    suspicious = np.arange(n) % suspicious_every == 0
    predicted = [classes[(classes.index(label) + 1) % len(classes)] if s and classes else (label or "")
                 for label, s in zip(labels, suspicious)]
    issues = np.where(suspicious, "label_error;misclassified", "")
    items = pd.DataFrame({
        "row": np.arange(n), "text": data.frame["text"].to_numpy(), "predicted": predicted,
        "predicted_probability": rng.random(n).round(3), "suggested_label": np.where(suspicious, predicted, ""),
        "score": score, "label_quality": 1 - score, "margin": rng.random(n), "issues": issues,
        "suspicious": suspicious, "label_issue": suspicious, "misclassified": suspicious, "unsure": False,
        "conflicting_duplicate": False, "split_leak": False, "duplicate_group": -1,
        "similar_rows": [f"{(i + 1) % n};{(i + 2) % n}" for i in range(n)]})
    if data.has_labels:
        items.insert(2, "label", labels)
    return items


def make_store(path: Path, *, label_column: str = "topic") -> tuple[TextData, ReviewStore]:
    data = read_labeled(path, label_column=label_column)
    items = fake_items(data)
    items.loc[[5, 6], ["duplicate_group", "conflicting_duplicate", "suspicious"]] = [5, True, True]
    items.loc[[5, 6], "issues"] = "duplicate;conflict"
    items.loc[0, ["suspicious", "score", "issues"]] = [True, 0.999, "label_error"]
    store = ReviewStore.create(default_store_path(path), data=data, items=items, classes=sorted(set(data.labels)),
                               label_column=label_column)
    return data, store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``textshift review DATA`` in a subprocess: start, read the URL it prints, kill it."""

    def __init__(self, data: Path, *extra: str, port: int | None = None, label_column: str | None = "topic"):
        self.data, self.port = data, port or free_port()
        self.extra = (*(("--label-column", label_column) if label_column else ()), *extra)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "textshift", "review", str(self.data), "--port", str(self.port), *self.extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()  # the URL, printed once the socket listens (imports are slow)
        if not line.startswith("http"):
            self.process.kill()
            raise AssertionError(f"no URL printed: {line!r} {self.process.stderr.read()[-2000:]}")
        self.url = line.strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/static/style.css", timeout=2).close()
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("server did not answer")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash or an OOM kill."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process:
            self.process.stdout.close()
            self.process.stderr.close()

    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"
