"""Probe: the small gains of BENCHMARKS.md §2, stacked. Does `finetune` with 200 bills reach `scratch` with 500?

Each of these lifted `finetune`@200 by 0.005-0.017 on its own, within or near the seeds' spread: the
logit-adjusted loss (`logit_adjust=1`), batch 16, one round of self-training on the unlabelled bills (p >= 0.9,
at most 60 per class) and masked-LM adaptation to the bill titles. This script runs them together, on the
same stratified samples that `compare` draws, with the references trained in the same process:

    finetune                    defaults, k = 200
    finetune[la,b16]            logit_adjust 1, batch 16, k = 200
    student[la,b16]             self-training: finetune[la,b16] labels the other 2,800 `train` bills (their labels
                                hidden); the sure ones join the 200 and finetune[la,b16] starts again from the
                                news model on both (no validation split: it would be pseudo-labels)
    finetune[adapt,la,b16]      as finetune[la,b16], from the news model after masked-LM on all 3,000 `train`
    student[adapt,la,b16]       bill titles (done once: it does not depend on the sample); second pass
    scratch                     defaults, k = 500 (the sample-efficiency target)

The first pass runs the first three and `scratch` for every seed, the second the two adapt variants. Scored on
the 1,449 `test` bills. Rows go to --out as they finish (`variant,k,seed,accuracy,macro_f1,train_seconds,
pseudo_rows,pseudo_accuracy,device`); a rerun skips finished rows. Without a cached news model (bench/work/
news-model, made by transfer_nyt_to_bills.py) it trains one with defaults first.

    python bench/stacked_probe.py --seeds 5                       # ~40 s a seed on an H200, ~15 min on 2 CPU cores
    python bench/stacked_probe.py --seeds 5 --curve 250,300,400   # plain finetune at more sizes
    python bench/stacked_probe.py --seeds 1 --quick --out /tmp/smoke.csv   # a smoke test: 2 epochs everywhere
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import RESULTS, WORK, append_row, done_keys  # noqa: E402
from self_training import pseudo_label, score  # noqa: E402

from textshift.adapt import AdaptConfig, adapt_language_model  # noqa: E402
from textshift.compare import sample_stratified  # noqa: E402
from textshift.data import TextData, read_labeled  # noqa: E402
from textshift.model import Classifier, is_model_folder  # noqa: E402
from textshift.training import TrainConfig, train, train_classifier  # noqa: E402
from textshift.transfer import TransferConfig, prepare_model, transfer  # noqa: E402

COLUMNS = ["variant", "k", "seed", "accuracy", "macro_f1", "train_seconds", "pseudo_rows", "pseudo_accuracy",
           "device"]


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def news_model(quick: bool) -> Classifier:
    """The cached news source model, or a new one trained with defaults on all headlines."""
    folder = WORK / ("news-model-quick" if quick else "news-model")
    if is_model_folder(folder):
        return Classifier.load(folder)
    started = time.perf_counter()
    config = TrainConfig(epochs=1, warmup_epochs=1) if quick else TrainConfig()
    model, _ = train_classifier(read_labeled("embedded:news"), config=config, progress=False)
    model.save(folder, overwrite=True)
    print(f"news model trained in {time.perf_counter() - started:.0f}s", flush=True)
    return model


class Probe:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.done = done_keys(self.out, ["variant", "k", "seed"])
        self.pool, self.test = read_labeled("embedded:bills-train"), read_labeled("embedded:bills-test")
        self.source = news_model(args.quick)
        self.device = device_name()
        base = TrainConfig(epochs=2, warmup_epochs=1) if args.quick else TrainConfig()
        self.base = base
        self.stacked = replace(base, logit_adjust=1.0, batch_size=16)

    def record(self, variant: str, k: int, seed: int, model: Classifier, started: float, classes: list[str],
               **extra) -> None:
        row = {"variant": variant, "k": k, "seed": seed, "device": self.device,
               "train_seconds": round(time.perf_counter() - started, 1)} | extra
        row |= score(model, self.test, classes)
        append_row(self.out, row, COLUMNS)
        self.done.add((variant, str(k), str(seed)))
        print(f"seed {seed} k={k} {variant:<24} macro-F1 {row['macro_f1']:.4f} ({row['train_seconds']:.0f}s)"
              + (f" pseudo {extra['pseudo_rows']} ({extra['pseudo_accuracy']:.1%} right)" if extra else ""),
              flush=True)

    def missing(self, variant: str, k: int, seed: int) -> bool:
        return (variant, str(k), str(seed)) not in self.done

    def finetune(self, source: Classifier, sample: TextData, config: TrainConfig) -> Classifier:
        return transfer(source, sample, config=TransferConfig(strategy="finetune", train=config))[0]

    def stack(self, source: Classifier, prefix: str, k: int, seed: int) -> None:
        """finetune[PREFIX la,b16] and its self-trained student on sample (k, seed)."""
        teacher_name, student_name = f"finetune[{prefix}la,b16]", f"student[{prefix}la,b16]"
        if not (self.missing(teacher_name, k, seed) or self.missing(student_name, k, seed)):
            return
        positions = sample_stratified(self.pool.labels, k, seed)
        sample = self.pool.subset(positions)
        started = time.perf_counter()
        teacher = self.finetune(source, sample, replace(self.stacked, seed=seed))
        if self.missing(teacher_name, k, seed):
            self.record(teacher_name, k, seed, teacher, started, sample.classes)
        candidates = np.setdiff1d(np.arange(len(self.pool)), positions)
        probs = teacher.predict_proba([self.pool.texts[i] for i in candidates])
        picked = pseudo_label(probs, candidates, threshold=self.args.threshold, per_class=self.args.per_class)
        pseudo_labels = [teacher.labels[j] for j in picked[:, 1]]
        right = float(np.mean([label == self.pool.labels[i]
                               for label, i in zip(pseudo_labels, picked[:, 0], strict=True)]))
        combined = TextData.from_lists(sample.texts + [self.pool.texts[i] for i in picked[:, 0]],
                                       sample.labels + pseudo_labels)
        config = TransferConfig(strategy="finetune", train=replace(self.stacked, seed=seed, val_fraction=0))
        student = prepare_model(source, combined, config)
        train(student, combined.texts, combined.labels, config=config.train)
        self.record(student_name, k, seed, student, started, sample.classes, pseudo_rows=len(picked),
                    pseudo_accuracy=round(right, 4))

    def plain(self, strategy: str, k: int, seed: int) -> None:
        if not self.missing(strategy, k, seed):
            return
        sample = self.pool.subset(sample_stratified(self.pool.labels, k, seed))
        started = time.perf_counter()
        config = TransferConfig(strategy=strategy, train=replace(self.base, seed=seed))
        model = transfer(self.source, sample, config=config)[0]
        self.record(strategy, k, seed, model, started, sample.classes)

    def adapted_source(self) -> Classifier:
        adapted = copy.deepcopy(self.source)
        started = time.perf_counter()
        config = AdaptConfig(epochs=1) if self.args.quick else AdaptConfig()
        adapt_language_model(adapted, self.pool.texts, config=config)
        print(f"masked-LM adaptation on {len(self.pool)} bill titles: {time.perf_counter() - started:.0f}s",
              flush=True)
        return adapted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="samples per size (default 5)")
    parser.add_argument("--k", type=int, default=200, help="labelled bills of the stacked variants (default 200)")
    parser.add_argument("--scratch-k", type=int, default=500, help="labelled bills of the reference (default 500)")
    parser.add_argument("--threshold", type=float, default=0.9, help="least teacher probability kept (default 0.9)")
    parser.add_argument("--per-class", type=int, default=60, help="most pseudo-labels per class (default 60)")
    parser.add_argument("--no-adapt", action="store_true", help="skip the second pass (the adapt variants)")
    parser.add_argument("--curve", default="", help="only plain `finetune` at these sizes (e.g. 250,300,400), "
                        "every seed: where `finetune` meets the reference")
    parser.add_argument("--quick", action="store_true", help="2 epochs everywhere: a smoke test, not a measurement")
    parser.add_argument("--out", default=str(RESULTS / "stacked_probe.csv"), help="results CSV (appended)")
    args = parser.parse_args()
    if args.seeds < 1 or args.k < 1 or args.scratch_k < 1 or args.per_class < 1 or not 0 <= args.threshold <= 1:
        raise SystemExit("expected --seeds, --k, --scratch-k, --per-class >= 1 and --threshold in [0, 1]; got "
                         f"{args.seeds}, {args.k}, {args.scratch_k}, {args.per_class}, {args.threshold}")
    probe = Probe(args)
    if args.curve:
        for seed in range(args.seeds):
            for k in [int(size) for size in args.curve.split(",")]:
                probe.plain("finetune", k, seed)
        return
    for seed in range(args.seeds):
        probe.plain("finetune", args.k, seed)
        probe.stack(probe.source, "", args.k, seed)
        probe.plain("scratch", args.scratch_k, seed)
    if args.no_adapt:
        return
    adapted = None
    for seed in range(args.seeds):
        if probe.missing("student[adapt,la,b16]", args.k, seed):
            adapted = adapted or probe.adapted_source()
            probe.stack(adapted, "adapt,", args.k, seed)


if __name__ == "__main__":
    main()
