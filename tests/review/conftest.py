"""Review fixtures: a small dataset with awkward rows, its edit log, and real server processes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from review_helpers import CLASSES, SCRIPT_TEXT, ServerProcess, make_store


@pytest.fixture()
def review_csv(tmp_path) -> Path:
    """40 rows, label column named ``topic``, an HTML/script row and a pair of duplicates with other labels."""
    texts = [f"A bill about topic number {i} and its funding" for i in range(40)]
    labels = [CLASSES[i % 3] for i in range(40)]
    texts[0] = SCRIPT_TEXT
    texts[5] = texts[6] = "To establish a duplicate program"
    frame = pd.DataFrame({"id": range(100, 140), "text": texts, "topic": labels,
                          "split": ["train"] * 30 + ["test"] * 10})
    path = tmp_path / "data" / "bills.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def review_store(review_csv):
    data, store = make_store(review_csv)
    yield data, store
    store.close()


@pytest.fixture()
def server_process():
    started: list[ServerProcess] = []

    def start(data: Path, *extra: str, port: int | None = None, label_column: str | None = "topic") -> ServerProcess:
        server = ServerProcess(data, *extra, port=port, label_column=label_column)
        started.append(server)  # killed at teardown even when starting fails
        return server.start()

    yield start
    for server in started:
        server.kill()
