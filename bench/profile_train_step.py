"""Where the time of a training step goes: torch profiler over a few fine-tuning steps on bill titles.

    python bench/profile_train_step.py [--steps 4] [--batch-size 32] [--rows 22] [--torch-dropout]

The default backbone with a fresh head, batches of consecutive bill titles padded to their longest, AdamW (fused),
gradient clipping and textshift's CPU dropout masks (``textshift.dropout``; ``--torch-dropout`` profiles PyTorch's
own instead): the work of one step of ``textshift.training.train``. Prints the operators sorted by their own
CPU time; BENCHMARKS.md groups them (matrix products, dropout masks, copies, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="profiled steps (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=22, help="operators to list")
    parser.add_argument("--torch-dropout", action="store_true", help="PyTorch's dropout masks, as before textshift's")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from textshift.data import read_labeled
    from textshift.dropout import cheap_dropout
    from textshift.model import DEFAULT_BACKBONE, Classifier
    from textshift.training import adamw

    bills = read_labeled("embedded:bills")
    classifier = Classifier.from_backbone(DEFAULT_BACKBONE, labels=bills.classes, seed=0)
    model = classifier.model.train()
    label_id = classifier.label2id
    optimizer = adamw(model.parameters(), lr=1e-4)
    size = args.batch_size

    def step(i: int) -> None:
        texts = bills.texts[i * size:(i + 1) * size]
        batch = classifier.tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
        labels = torch.tensor([label_id[label] for label in bills.labels[i * size:(i + 1) * size]])
        model(**batch, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    with contextlib.nullcontext() if args.torch_dropout else cheap_dropout(model):
        step(0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(1, args.steps + 1):
                step(i)
        print(f"attention: {model.config._attn_implementation}; threads: {torch.get_num_threads()}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
