"""Probe: does self-training on unlabelled bills lift `finetune` at small k?

For each k and seed, on the same stratified sample of `train` bills that `compare` draws:

1. teacher  `finetune` from the news model on the k labelled bills (today's defaults); with --teachers N, N
   such runs with different training seeds on the same sample, their probabilities averaged (an ensemble);
2. pseudo-labels  the teacher labels the other `train` bills (their labels are hidden from it). With
   --weighting threshold (default) a bill is kept when the teacher's probability is at least --threshold, at
   most --per-class bills per predicted class, the most confident first. With --weighting confidence every bill
   is kept, and its row weight in the loss is the teacher's probability of its pseudo-label (labelled rows
   weigh 1);
3. student  `finetune` from the news model again, on the k labelled bills plus the pseudo-labelled ones
   (fixed epochs: no validation split, which would be made of pseudo-labels);
4. with --rounds N, the student is the next round's teacher (new pseudo-labels, a new student from the news
   model), N times.

Teacher and students are scored on the 1,449 `test` bills. The pseudo-labels' accuracy against the hidden true labels is
recorded too. This is a measurement, not a textshift strategy: it tells whether the unlabelled texts a user
usually has could close the gap to `scratch` with more labels (BENCHMARKS.md §2, criterion 2).

    python bench/self_training.py                 # k = 200, 3 seeds (~9 min per seed on 2 cores)
    python bench/self_training.py --seeds 3 --threshold 0.9 --per-class 60 --rounds 2
    python bench/self_training.py --seeds 3 --teachers 3 --weighting confidence

Writes bench/results/self_training.csv (variant,k,seed,accuracy,macro_f1,train_seconds,pseudo_rows,
pseudo_accuracy; the student's variant names its threshold and cap, e.g. `student[p>=0.7,<=150/class]`, or
`confidence-weighted`, then the number of teachers when more than one, and from round 2 on its round; an
ensemble teacher is `teacher[ensemble of N]`); rerunning skips finished rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import RESULTS, WORK, append_row, done_keys  # noqa: E402

from textshift.compare import sample_stratified  # noqa: E402
from textshift.data import TextData, read_labeled  # noqa: E402
from textshift.evaluate import evaluate_predictions  # noqa: E402
from textshift.model import Classifier  # noqa: E402
from textshift.training import LossShaping, TrainConfig, train  # noqa: E402
from textshift.transfer import TransferConfig, prepare_model, transfer  # noqa: E402

SOURCE = WORK / "news-model"
OUT_CSV = RESULTS / "self_training.csv"
COLUMNS = ["variant", "k", "seed", "accuracy", "macro_f1", "train_seconds", "pseudo_rows", "pseudo_accuracy"]


def ensemble_proba(models: list[Classifier], texts: list[str]) -> np.ndarray:
    """The models' class probabilities averaged (every model has the same labels in the same order)."""
    return np.mean([model.predict_proba(texts) for model in models], axis=0)


def pseudo_label(probs: np.ndarray, candidates: np.ndarray, *, threshold: float, per_class: int) -> np.ndarray:
    """Rows ``[position, label id]`` of the ``candidates`` (pool positions, ``probs`` their teacher
    probabilities) the teacher is sure of: probability >= ``threshold``, at most ``per_class`` per label."""
    best, confidence = probs.argmax(1), probs.max(1)
    chosen = []
    for label_id in range(probs.shape[1]):
        sure = np.flatnonzero((best == label_id) & (confidence >= threshold))
        chosen.extend(sure[np.argsort(-confidence[sure])][:per_class])
    chosen = np.sort(np.array(chosen, dtype=int))
    return np.stack([candidates[chosen], best[chosen]], axis=1) if len(chosen) else np.zeros((0, 2), int)


def score(models: Classifier | list[Classifier], test: TextData, classes: list[str]) -> dict:
    models = models if isinstance(models, list) else [models]
    predicted = [models[0].labels[j] for j in ensemble_proba(models, test.texts).argmax(1)]
    report = evaluate_predictions(test.labels, predicted, model_labels=classes)
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def student_name(args: argparse.Namespace, round_number: int) -> str:
    parts = ["confidence-weighted" if args.weighting == "confidence" else
             f"p>={args.threshold:g},<={args.per_class}/class"]
    if args.teachers > 1:
        parts.append(f"{args.teachers} teachers")
    if round_number > 1:
        parts.append(f"round {round_number}")
    return f"student[{','.join(parts)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.7, help="least teacher probability kept")
    parser.add_argument("--per-class", type=int, default=150, help="most pseudo-labelled bills per class")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; each student teaches the next (default 1)")
    parser.add_argument("--teachers", type=int, default=1,
                        help="first-round teachers (training seeds) whose probabilities are averaged (default 1)")
    parser.add_argument("--weighting", choices=["threshold", "confidence"], default="threshold",
                        help="keep sure bills (threshold) or every bill, weighted by the teacher's probability")
    args = parser.parse_args()
    if (not 0.0 <= args.threshold <= 1.0 or min(args.per_class, args.rounds, args.seeds, args.teachers) < 1):
        raise SystemExit(f"expected --threshold in [0, 1] and --per-class, --rounds, --seeds, --teachers >= 1; got "
                         f"{args.threshold}, {args.per_class}, {args.rounds}, {args.seeds}, {args.teachers}. "
                         "Pass e.g. --threshold 0.9 --per-class 60 --rounds 1 --seeds 3 --teachers 1")
    if not (SOURCE / "textshift.json").exists():
        raise SystemExit(f"no news model at {SOURCE}; run `python bench/transfer_nyt_to_bills.py --phases main` "
                         "first (it trains and caches it)")
    source = Classifier.load(SOURCE)
    pool, test = read_labeled("embedded:bills-train"), read_labeled("embedded:bills-test")
    done = done_keys(OUT_CSV, ["variant", "k", "seed"])
    for k in [int(size) for size in args.sizes.split(",")]:
        for seed in range(args.seeds):
            variants = [student_name(args, r) for r in range(1, args.rounds + 1)]
            if (variants[-1], str(k), str(seed)) in done:
                continue
            positions = sample_stratified(pool.labels, k, seed)
            sample = pool.subset(positions)
            candidates = np.setdiff1d(np.arange(len(pool)), positions)
            started = time.perf_counter()
            teachers = []
            for j in range(args.teachers):  # teacher 0 is the plain `finetune` run of this sample
                config = TransferConfig(strategy="finetune", train=TrainConfig(seed=seed + 1000 * j))
                teachers.append(transfer(source, sample, config=config)[0])
                if j == 0:
                    row = {"variant": "teacher", "k": k, "seed": seed,
                           "train_seconds": round(time.perf_counter() - started, 1)}
                    if ("teacher", str(k), str(seed)) not in done:
                        append_row(OUT_CSV, row | score(teachers[0], test, sample.classes), COLUMNS)
            ensemble = f"teacher[ensemble of {args.teachers}]"
            if args.teachers > 1 and (ensemble, str(k), str(seed)) not in done:
                append_row(OUT_CSV, {"variant": ensemble, "k": k, "seed": seed,
                                     "train_seconds": round(time.perf_counter() - started, 1)}
                           | score(teachers, test, sample.classes), COLUMNS)
            for variant in variants:  # each round's student is the next round's teacher
                probs = ensemble_proba(teachers, [pool.texts[i] for i in candidates])
                if args.weighting == "confidence":
                    picked = np.stack([candidates, probs.argmax(1)], axis=1)
                    pseudo_weights = probs.max(1).tolist()
                else:
                    picked = pseudo_label(probs, candidates, threshold=args.threshold, per_class=args.per_class)
                    pseudo_weights = [1.0] * len(picked)
                pseudo_texts = [pool.texts[i] for i in picked[:, 0]]
                pseudo_labels = [teachers[0].labels[j] for j in picked[:, 1]]
                truth = [pool.labels[i] for i in picked[:, 0]]
                agree = [a == b for a, b in zip(pseudo_labels, truth, strict=True)]
                pseudo_accuracy = float(np.mean(agree)) if truth else 0.0
                combined = TextData.from_lists(sample.texts + pseudo_texts, sample.labels + pseudo_labels)
                student_config = TransferConfig(strategy="finetune", train=TrainConfig(seed=seed, val_fraction=0))
                student = prepare_model(source, combined, student_config)
                train(student, combined.texts, combined.labels, config=student_config.train,
                      loss=LossShaping(weights=[1.0] * len(sample) + pseudo_weights))
                seconds = time.perf_counter() - started
                result = score(student, test, sample.classes)
                if (variant, str(k), str(seed)) not in done:
                    append_row(OUT_CSV, {"variant": variant, "k": k, "seed": seed, "train_seconds": round(seconds, 1),
                                         "pseudo_rows": len(picked), "pseudo_accuracy": round(pseudo_accuracy, 4)}
                               | result, COLUMNS)
                print(f"k={k} seed={seed}: {variant} macro-F1 {result['macro_f1']} with {len(picked)} "
                      f"pseudo-labels ({pseudo_accuracy:.1%} right), {seconds:.0f}s", flush=True)
                teachers = [student]


if __name__ == "__main__":
    main()
