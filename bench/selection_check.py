"""Check: does `compare` recommend `scratch` when the source model is useless?

On the embedded data the news model helps, so `compare` always recommends `finetune`, and that agreement says
little about the choosing. Here the source is made useless on purpose: a news model trained with defaults on
headlines whose labels were shuffled (seeded; class sizes kept). Its encoder learnt nothing about topics, so
fine-tuning it on bills should do no better than training the backbone on them (`scratch`), and a sound
recommendation should pick `scratch` when it is clearly better on the test rows.

For each selection method (`probe`: only the head is trained on 75% of the sample and scored on the other 25%;
`holdout`: each candidate fully trained on the 75%), `compare` runs `scratch` and `finetune` on the same
samples of `train` bills, scored on the 1,449 `test` bills, and the script records which strategy was
chosen against which scored best.

    python bench/selection_check.py                      # k = 100, 300; seed 0; ~25 min on 2 CPU cores
    python bench/selection_check.py --benchmark          # the same rule on the transfer benchmark's 19 samples

With --benchmark the control: the real news model, probe choices on every sample of transfer_nyt_to_bills.py
(its news model is trained first if bench/work has none; ~7 min), test scores read from that benchmark's CSV.

Writes bench/results/selection_check.csv (source,selection,rule,k,seed,chosen,best_on_test,scratch_f1,finetune_f1,
inner_scratch_f1,inner_finetune_f1,share_better); `rule` is the recommendation rule of textshift.selection
(`highest-score`: the rule before it), `share_better` the share of bootstrap resamples of the held-out rows in
which the best candidate beat `scratch`. The compare folders under bench/work/ make a rerun resume; a new rule
recomputes only the choices.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import RESULTS, WORK, append_row, done_keys  # noqa: E402

from textshift.compare import CompareConfig, compare  # noqa: E402
from textshift.data import TextData, read_labeled  # noqa: E402
from textshift.model import Classifier, is_model_folder  # noqa: E402
from textshift.selection import RULE  # noqa: E402
from textshift.training import TrainConfig, train_classifier  # noqa: E402

SOURCE = WORK / "news-model-shuffled-labels"
OUT_CSV = RESULTS / "selection_check.csv"
COLUMNS = ["source", "selection", "rule", "k", "seed", "chosen", "best_on_test", "scratch_f1", "finetune_f1",
           "inner_scratch_f1", "inner_finetune_f1", "share_better"]


def shuffled_source() -> Classifier:
    if is_model_folder(SOURCE):
        return Classifier.load(SOURCE)
    news = read_labeled("embedded:news")
    labels = list(np.random.default_rng(0).permutation(news.labels))
    started = time.perf_counter()
    model, result = train_classifier(TextData.from_lists(news.texts, labels, name="news-shuffled-labels"),
                                     config=TrainConfig(), progress=False)
    model.save(SOURCE, overwrite=True)
    print(f"shuffled-label news model: {time.perf_counter() - started:.0f}s, validation {result.val_metrics}",
          flush=True)
    return model


BENCHMARK_SAMPLES = [(k, seed) for k in (50, 100, 200, 500, 1000) for seed in range(5 if k in (200, 500) else 3)]


def benchmark_choices(done: set) -> None:
    """The probe choice under the current rule for every sample of the transfer benchmark (news model as is)."""
    from transfer_nyt_to_bills import OUT_CSV as BENCH_CSV
    from transfer_nyt_to_bills import SOURCE as NEWS
    from transfer_nyt_to_bills import ensure_source

    from textshift.compare import _scores, sample_stratified
    from textshift.selection import pick, probe

    ensure_source()
    source = Classifier.load(NEWS)
    pool = read_labeled("embedded:bills-train")
    bench = pd.read_csv(BENCH_CSV)
    for k, seed in BENCHMARK_SAMPLES:
        if ("news", "probe", RULE, str(k), str(seed)) in done:
            continue
        sample = pool.subset(sample_stratified(pool.labels, k, seed))
        predictions, scores = {}, {}
        for candidate in ("scratch", "finetune"):  # what compare's default (probe) selection does
            predictions[candidate], _ = probe(candidate, sample, seed, TrainConfig(), source)
            scores[candidate] = _scores(sample.labels, predictions[candidate], sample.classes)[0]["macro_f1"]
        chosen, reason = pick(["scratch", "finetune"], scores, predictions, sample.labels, seed=seed)
        test = {s: bench[(bench.strategy == s) & (bench.k == k) & (bench.seed == seed)].macro_f1
                for s in ("scratch", "finetune")}
        f1 = {s: float(values.iloc[0]) if len(values) else float("nan") for s, values in test.items()}
        row = {"source": "news", "selection": "probe", "rule": RULE, "k": k, "seed": seed, "chosen": chosen,
               "best_on_test": max(f1, key=f1.get), "scratch_f1": f1["scratch"], "finetune_f1": f1["finetune"],
               "inner_scratch_f1": round(scores["scratch"], 4), "inner_finetune_f1": round(scores["finetune"], 4),
               "share_better": reason.get("share_better", "")}
        append_row(OUT_CSV, row, COLUMNS)
        print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,300", help="labelled bills per sample (default 100,300)")
    parser.add_argument("--seeds", type=int, default=1, help="samples per size (default 1)")
    parser.add_argument("--selections", default="probe,holdout", help="selection methods (default both)")
    parser.add_argument("--benchmark", action="store_true",
                        help="instead: the current rule's choices on the samples of transfer_nyt_to_bills.py, with "
                             "the real news model (its test scores come from that benchmark's CSV)")
    args = parser.parse_args()
    done = done_keys(OUT_CSV, ["source", "selection", "rule", "k", "seed"])
    if args.benchmark:
        benchmark_choices(done)
        return
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"expected --sizes as comma-separated whole numbers; got {args.sizes!r}. "
                         "Pass e.g. --sizes 100,300") from None
    if min(sizes) < 1 or args.seeds < 1 or not set(args.selections.split(",")) <= {"probe", "holdout"}:
        raise SystemExit(f"expected sizes and --seeds >= 1 and --selections among probe,holdout; got {sizes}, "
                         f"{args.seeds}, {args.selections!r}")
    source = shuffled_source()
    pool, test = read_labeled("embedded:bills-train"), read_labeled("embedded:bills-test")
    for selection in args.selections.split(","):
        config = CompareConfig(sizes=sizes, seeds=args.seeds, strategies=["scratch", "finetune"], baselines=[],
                               selection=selection, save_model=False)
        result = compare(source, pool, test=test, out_dir=WORK / f"selection-{selection}", config=config)
        for (k, seed), group in result.runs.groupby(["k", "seed"]):
            if ("news-shuffled-labels", selection, RULE, str(k), str(seed)) in done:
                continue
            f1 = dict(zip(group.strategy, group.macro_f1, strict=True))
            recommended = group[group.strategy == "recommended"].iloc[0]
            reason = json.loads(recommended.settings).get("choice", {})
            row = {"source": "news-shuffled-labels", "selection": selection, "rule": RULE, "k": k, "seed": seed,
                   "chosen": recommended.chosen, "share_better": reason.get("share_better", ""),
                   "best_on_test": max(("scratch", "finetune"), key=lambda s: f1[s]),
                   "scratch_f1": round(f1["scratch"], 4), "finetune_f1": round(f1["finetune"], 4),
                   "inner_scratch_f1": round(f1["inner:scratch"], 4),
                   "inner_finetune_f1": round(f1["inner:finetune"], 4)}
            append_row(OUT_CSV, row, COLUMNS)
            print(row, flush=True)


if __name__ == "__main__":
    main()
