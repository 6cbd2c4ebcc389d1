"""Two-process data-parallel training on CPU (gloo), launched like a user would with ``torchrun``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("distributed_train.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_end_with_the_same_weights_and_one_model(tiny_backbone, small_news, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(SCRIPT), tiny_backbone, str(small_news), str(out)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    ranks = [json.loads((out / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["world_size"] == 2
    assert ranks[0] == ranks[1]  # same weights (sha256), same history, same early-stopping decisions
    assert [record["epoch"] for record in ranks[0]["history"]] == [0, 1, 2, 3]

    # The command: one model folder, written once, its checkpoints removed; one JSON summary on stdout.
    assert sorted(p.name for p in out.iterdir()) == ["cli-model", "library.checkpoint", "rank-0.json", "rank-1.json"]
    assert {p.name for p in (out / "cli-model").iterdir()} >= {"config.json", "model.safetensors", "textshift.json"}
    summaries = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["model"] == str(out / "cli-model")
