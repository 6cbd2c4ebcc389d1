"""Run by tests/test_training_distributed.py under ``accelerate launch --num_processes 2 --cpu``.

Each process trains through the library (checkpoints on) and writes a digest of its final weights to
``OUT/rank-R.json``; then all run the ``textshift train`` command, of which only the main process may write.

Usage: distributed_train.py BACKBONE DATA OUT
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def main() -> None:
    import torch.distributed as dist

    from textshift.cli import main as cli_main
    from textshift.data import read_labeled
    from textshift.training import TrainConfig, train_classifier

    backbone, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    config = TrainConfig(epochs=3, batch_size=8, warmup_epochs=1, learning_rate=1e-3, min_val_rows=10, seed=3)
    classifier, result = train_classifier(read_labeled(data), backbone=backbone, config=config,
                                          checkpoint_dir=out / "library.checkpoint")
    digest = hashlib.sha256()
    for name, tensor in sorted(classifier.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    rank = dist.get_rank()
    (out / f"rank-{rank}.json").write_text(json.dumps({
        "world_size": dist.get_world_size(), "sha256": digest.hexdigest(), "best_epoch": result.best_epoch,
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result.history],
        "val_metrics": result.val_metrics}))
    sys.argv = ["textshift", "train", data, "-o", str(out / "cli-model"), "--backbone", backbone, "--epochs", "2",
                "--warmup-epochs", "1", "--batch-size", "8", "--memory-per-class", "0", "-q"]
    cli_main()


if __name__ == "__main__":
    main()
