"""Benchmark: grow a bills classifier over 3 steps of topics and measure forgetting.

The 20 topics of the embedded bills' ``train`` rows are put in a seeded random order and split into 3 steps
(8 + 6 + 6 classes). Step 1 trains a classifier on the first 8 topics (shared by every variant of a seed); each
variant then adds the next 6 topics, then the last 6. Every model is scored on the bills' ``test`` rows of the
classes it knows.

Variants
--------
naive       fine-tuning on the new classes only (no memory, no distillation, no bias correction)
memory5     rehearsal with 5 examples per class and the class-balanced loss, no distillation
memory20    the same with 20 per class
memory50    the same with 50 per class
default     the shipped defaults of ``textshift grow`` (GrowConfig(): rehearsal with 20 per class, class-balanced
            loss, distillation of the old model's outputs, weight aligning of the new head rows)
balanced    the defaults without weight aligning (the class-balanced loss alone corrects the bias)
align       the defaults with weight aligning but without the class-balanced loss
default-lr3e-5   ``balanced`` with fine-tuning learning rate 3e-5 instead of 1e-4 (less encoder drift)
default-llrd0.5  ``balanced`` with layer-wise learning-rate decay 0.5 (lower layers barely move)
default-distill5 ``balanced`` with distillation weight 5
default-steps200 ``default`` aiming at 200 optimizer steps a step instead of 400 (less drift, new classes less fitted)
e2               ``balanced`` with 2 fine-tuning epochs per step, whatever --epochs says
ace              ``default`` with the asymmetric loss: rows of new classes scored against the new classes only
ace-none         ``ace`` without the class-balanced loss and without weight aligning
la               ``default`` with the balanced softmax (log class counts added to the logits in the loss)
                 instead of the class-balanced loss weights, no weight aligning
la-align         ``la`` with weight aligning
bic              ``default`` with calibration (as in BiC): 4 rows per class held out of training, then one scale
                 and one shift of the new classes' logits fitted on them
la-align-bic     ``la-align`` with that calibration
stats-lda        no training: the encoder stays as step 1 left it and the head is linear discriminant analysis
                 from exact class statistics of the feature vectors (the old classes' computed once from all step-1
                 rows, as ``--old-data`` does; then stored and updated), shared covariance shrunk by 0.1
stats-lda-s0.01, stats-lda-s0.3  the same with shrinkage 0.01 / 0.3
stats-lda-mem    ``stats-lda`` with the old classes' statistics estimated from the 20 remembered rows a class
joint       one model trained from the backbone on all classes seen so far, at once

Output: one row per (variant, step, seed) appended to the CSV as soon as it is finished, so an interrupted run
resumes where it stopped. Columns: ``variant,step,seed,macro_f1,old_class_accuracy,forgetting,train_seconds``
(forgetting: best earlier accuracy on the first step's classes minus the current one), then the accuracy on
each step's classes, overall accuracy, the rows trained on and the settings of the run.

Example (the full benchmark; hours on a 2-core CPU, minutes on a GPU)::

    HF_HUB_OFFLINE=1 python bench/grow_bills.py --seeds 0,1,2

Print the results as a markdown table (mean over seeds)::

    python bench/grow_bills.py --summary

Reduced run (1 seed, capped rows)::

    HF_HUB_OFFLINE=1 python bench/grow_bills.py --seeds 0 --variants naive,memory20,joint,default \\
        --epochs 2 --max-per-class 40 --test-per-class 30 --max-length 64 --joint-steps 3
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.data import TextData, read_labeled
from textshift.grow import GrowConfig, Memory, grow, read_memory, save_with_memory, score_steps
from textshift.model import DEFAULT_BACKBONE, Classifier
from textshift.stats_head import read_stats
from textshift.training import TrainConfig, train_classifier

STEP_SIZES = (8, 6, 6)
COLUMNS = ["variant", "step", "seed", "macro_f1", "old_class_accuracy", "forgetting", "train_seconds",
           "acc_step1", "acc_step2", "acc_step3", "accuracy", "train_rows", "epochs", "max_per_class",
           "test_per_class", "max_length", "backbone"]
SETTINGS = ("epochs", "max_per_class", "test_per_class", "max_length", "backbone")
VARIANTS = {
    "naive": dict(memory_per_class=0, distill=False, bias_correction="none"),
    "memory5": dict(memory_per_class=5, distill=False, bias_correction="balanced"),
    "memory20": dict(memory_per_class=20, distill=False, bias_correction="balanced"),
    "memory50": dict(memory_per_class=50, distill=False, bias_correction="balanced"),
    "default": dict(),
    "balanced": dict(bias_correction="balanced"),
    "align": dict(bias_correction="align"),
    "default-lr3e-5": dict(bias_correction="balanced", train={"learning_rate": 3e-5}),
    "default-llrd0.5": dict(bias_correction="balanced", train={"layer_lr_decay": 0.5}),
    "e2": dict(bias_correction="balanced", train={"epochs": 2}),
    "default-distill5": dict(bias_correction="balanced", distill_weight=5.0),
    "default-steps200": dict(train={"target_steps": 200}),
    "ace": dict(asymmetric_loss=True),
    "ace-none": dict(asymmetric_loss=True, bias_correction="none"),
    "la": dict(bias_correction="logit-adjust"),
    "la-align": dict(bias_correction="logit-adjust+align"),
    "bic": dict(calibrate_holdout=4),
    "la-align-bic": dict(bias_correction="logit-adjust+align", calibrate_holdout=4),
    "stats-lda": dict(head="lda", old_data=True),
    "stats-lda-s0.01": dict(head="lda", shrinkage=0.01, old_data=True),
    "stats-lda-s0.3": dict(head="lda", shrinkage=0.3, old_data=True),
    "stats-lda-mem": dict(head="lda"),
    "joint": None,
}

log = logging.getLogger("grow_bills")


def topic_steps(classes: list[str], seed: int) -> list[list[str]]:
    order = [classes[i] for i in np.random.default_rng(seed).permutation(len(classes))]
    bounds = np.cumsum((0,) + STEP_SIZES)
    return [sorted(order[bounds[i]:bounds[i + 1]]) for i in range(len(STEP_SIZES))]


def cap(frame: pd.DataFrame, per_class: int | None, seed: int) -> pd.DataFrame:
    if per_class is None:
        return frame
    parts = [group.sample(min(len(group), per_class), random_state=seed) for _, group in frame.groupby("label")]
    return pd.concat(parts).sort_index()


def as_data(frame: pd.DataFrame, name: str) -> TextData:
    return TextData.from_lists(frame.text.tolist(), frame.label.tolist(), name=name)


def load_done(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, dtype={"max_per_class": "Int64", "test_per_class": "Int64", "epochs": "Int64"})


def append_row(path: Path, row: dict) -> None:
    new = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
        handle.flush()


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.output = Path(args.output)
        key = f"e{args.epochs}-c{args.max_per_class}-l{args.max_length}-{Path(args.backbone).name}"
        self.work = Path(args.work_dir) / key
        self.train_frame = read_labeled("embedded:bills-train").frame
        self.test_frame = read_labeled("embedded:bills-test").frame
        self.classes = sorted(self.train_frame.label.unique())
        self.settings = {"epochs": args.epochs, "max_per_class": args.max_per_class,
                         "test_per_class": args.test_per_class, "max_length": args.max_length,
                         "backbone": args.backbone}

    # ------------------------------------------------------------------ bookkeeping
    def _matches(self, done: pd.DataFrame) -> pd.DataFrame:
        keep = np.ones(len(done), dtype=bool)
        for key in SETTINGS:
            value = self.settings[key]
            column = done[key]
            keep &= column.isna().to_numpy() if value is None else (column.astype(str) == str(value)).to_numpy()
        return done[keep]

    def finished(self, variant: str, step: int, seed: int) -> dict | None:
        done = self._matches(load_done(self.output))
        hit = done[(done.variant == variant) & (done.step == step) & (done.seed == seed)]
        return hit.iloc[-1].to_dict() if len(hit) else None

    def record(self, variant: str, step: int, seed: int, scores, seconds: float, train_rows: int) -> dict:
        first = [scores.step_accuracy.get(1)]
        for earlier in range(1, step):
            row = self.finished(variant, earlier, seed)
            if row is not None:
                first.append(row["acc_step1"])
        earlier = [v for v in first[1:] if v is not None and not pd.isna(v)]
        best = max(earlier) if earlier else scores.step_accuracy[1]
        row = {"variant": variant, "step": step, "seed": seed, "macro_f1": round(scores.macro_f1, 4),
               "old_class_accuracy": "" if scores.old_class_accuracy is None else round(scores.old_class_accuracy, 4),
               "forgetting": round(best - scores.step_accuracy[1], 4), "train_seconds": round(seconds, 1),
               "accuracy": round(scores.accuracy, 4), "train_rows": train_rows, **self.settings}
        for j, value in scores.step_accuracy.items():
            row[f"acc_step{j}"] = round(value, 4)
        append_row(self.output, row)
        print(f"{variant:9s} step {step} seed {seed}: macro-F1 {row['macro_f1']:.4f}, old-class accuracy "
              f"{row['old_class_accuracy']}, forgetting {row['forgetting']:+.4f}, {seconds:.0f}s", flush=True)
        return row

    # ------------------------------------------------------------------ data
    def split(self, seed: int):
        steps = topic_steps(self.classes, seed)
        train = cap(self.train_frame, self.args.max_per_class, seed)
        test = cap(self.test_frame, self.args.test_per_class, seed)
        step_data = [train[train.label.isin(s)] for s in steps]
        return steps, step_data, as_data(test, "bills-test")

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(epochs=self.args.epochs, max_length=self.args.max_length, seed=seed, val_fraction=0.0)

    # ------------------------------------------------------------------ runs
    def step_one(self, seed: int, steps, step_data, test: TextData) -> Classifier:
        folder = self.work / f"seed{seed}" / "step1"
        if folder.exists():
            classifier = Classifier.load(folder)
        else:
            started = time.perf_counter()
            classifier, _ = train_classifier(as_data(step_data[0], "bills-train step 1"), backbone=self.args.backbone,
                                             config=self.train_config(seed))
            classifier.meta.class_history = [{"step": 1, "added": steps[0]}]
            seconds = time.perf_counter() - started
            save_with_memory(classifier, folder, None, overwrite=True)
            (folder / "seconds.txt").write_text(f"{seconds:.1f}\n")
        seconds = float((folder / "seconds.txt").read_text())
        scores = None
        for variant in self.args.variants:
            if self.finished(variant, 1, seed) is None:
                scores = scores or score_steps(classifier, test, steps[:1])
                self.record(variant, 1, seed, scores, seconds, len(step_data[0]))
        return classifier

    def run_variant(self, variant: str, seed: int, first: Classifier, steps, step_data, test: TextData) -> None:
        settings = VARIANTS[variant]
        base = self.work / f"seed{seed}" / variant
        for step in range(2, len(steps) + 1):
            if self.finished(variant, step, seed) is not None:
                continue
            if settings is None:
                if step not in self.args.joint_steps:
                    continue
                started = time.perf_counter()
                seen = pd.concat(step_data[:step])
                joint, _ = train_classifier(as_data(seen, f"bills-train steps 1-{step}"),
                                            backbone=self.args.backbone, config=self.train_config(seed))
                self.record(variant, step, seed, score_steps(joint, test, steps[:step]),
                            time.perf_counter() - started, len(seen))
                continue
            overrides = settings.get("train", {})
            train_config = TrainConfig(**{**self.train_config(seed).to_dict(), **overrides})
            config = GrowConfig(**{k: v for k, v in settings.items() if k not in ("train", "old_data")}, seed=seed,
                                train=train_config)
            old_data, stats = None, None
            if step == 2:
                classifier = first
                memory = Memory.sample(step_data[0].text.tolist(), step_data[0].label.tolist(),
                                       per_class=config.memory_per_class, seed=seed) \
                    if config.memory_per_class else None
                if settings.get("old_data"):  # the statistics of the step-1 classes, computed once from all rows
                    old_data = as_data(step_data[0], "bills-train step 1")
            else:
                previous = base / f"step{step - 1}"
                if not previous.exists():
                    raise SystemExit(f"{previous} is missing; delete the CSV rows of {variant} seed {seed} to rerun")
                classifier, memory = Classifier.load(previous), read_memory(previous)
                stats = read_stats(previous, classifier) if config.head == "lda" else None
            new = as_data(step_data[step - 1], f"bills-train step {step}")
            result = grow(classifier, new, memory=memory, old_data=old_data, config=config, stats=stats)
            self.record(variant, step, seed, score_steps(result.classifier, test, steps[:step]), result.seconds,
                        len(new) + result.rehearsal_rows)
            if step < len(steps):
                save_with_memory(result.classifier, base / f"step{step}", result.memory, overwrite=True,
                                 per_class=config.memory_per_class, stats=result.stats)
            else:
                shutil.rmtree(base, ignore_errors=True)

    def run(self) -> None:
        for seed in self.args.seeds:
            steps, step_data, test = self.split(seed)
            print(f"seed {seed}: steps {[len(s) for s in steps]} classes, train rows "
                  f"{[len(d) for d in step_data]}, test rows {len(test)}", flush=True)
            first = self.step_one(seed, steps, step_data, test)
            for variant in self.args.variants:
                self.run_variant(variant, seed, first, steps, step_data, test)


def summary_table(path: Path) -> str:
    """Markdown table of the CSV: mean over seeds per (variant, step) and settings."""
    done = load_done(path)
    if done.empty:
        return "(no results yet)"
    keys = ["variant", "step", *SETTINGS[:-1]]
    table = (done.fillna({"max_per_class": -1, "test_per_class": -1, "epochs": -1})
             .groupby(keys, sort=False)
             .agg(seeds=("seed", "nunique"), macro_f1=("macro_f1", "mean"),
                  old_class_accuracy=("old_class_accuracy", "mean"), forgetting=("forgetting", "mean"),
                  acc_step1=("acc_step1", "mean"), acc_step2=("acc_step2", "mean"),
                  acc_step3=("acc_step3", "mean"), train_seconds=("train_seconds", "mean"))
             .reset_index()
             .sort_values(["epochs", "max_per_class", "test_per_class", "max_length", "step"], kind="stable"))
    # Step 1 is one model per seed shared by every variant: one row per setting, over the most seeds.
    first = table[table.step == 1].sort_values("seeds", ascending=False, kind="stable")
    first = first.drop_duplicates(SETTINGS[:-1]).assign(variant="(all: the step-1 model)")
    table = pd.concat([first, table[table.step > 1]]).sort_values(
        ["epochs", "max_per_class", "test_per_class", "max_length", "step"], kind="stable")

    def setting(value) -> str:
        return "all" if value == -1 else str(int(value))

    def mean(value) -> str:
        return "" if pd.isna(value) else f"{value:.3f}"

    lines = ["| epochs | rows/class (train, test) | max length | variant | step | seeds | macro-F1 | "
             "old-class accuracy | forgetting (step-1 classes) | accuracy on step 1 / 2 / 3 classes | train s |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    for row in table.itertuples(index=False):
        epochs = "auto" if row.epochs == -1 else setting(row.epochs)
        per_step = " / ".join(mean(v) for v in (row.acc_step1, row.acc_step2, row.acc_step3)[:int(row.step)])
        lines.append(f"| {epochs} | {setting(row.max_per_class)}, {setting(row.test_per_class)} | {row.max_length} | "
                     f"{row.variant} | {row.step} | {row.seeds} | {row.macro_f1:.3f} | "
                     f"{mean(row.old_class_accuracy)} | {row.forgetting:+.3f} | {per_step} | {row.train_seconds:.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--variants", default="naive,memory5,memory20,memory50,default,joint",
                        type=lambda s: s.split(","))
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs [default: auto]")
    parser.add_argument("--max-per-class", type=int, default=None, help="cap on training rows per class")
    parser.add_argument("--test-per-class", type=int, default=None, help="cap on test rows per class")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--joint-steps", default="2,3", type=lambda s: [int(x) for x in s.split(",")],
                        help="steps at which the joint model is trained")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "grow_bills.csv"))
    parser.add_argument("--summary", action="store_true", help="print the results as a markdown table and exit")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "textshift-grow-bills"),
                        help="where step-1 and intermediate models are kept so a run can resume")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; expected some of {', '.join(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    if args.summary:
        print(summary_table(Path(args.output)))
        return
    Runner(args).run()


if __name__ == "__main__":
    main()
