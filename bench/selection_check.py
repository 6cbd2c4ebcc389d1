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
    python bench/selection_check.py --cases              # the default (short) selection: regret and cost

With --cases: the default selection of textshift.selection (each candidate fine-tuned for half its epochs on 75%
of the sample, scored on the other 25%) over the samples of the transfer benchmark (`news`: the real news model;
test scores of `scratch` and `finetune` read from transfer_nyt_to_bills.csv) and over cases built to make
`scratch` win: `news-shuffled-labels` (the news texts with shuffled labels) and `news-weak` (a news model trained
on 300 headlines) at the benchmark's sizes, where `finetune` is also trained on the full sample and scored on the
test bills (`scratch` does not depend on the source: its scores come from the benchmark's CSV). Cheapest samples
first; each finished candidate is appended to bench/results/selection_runs.csv (held-out predictions kept, so
other rules can be scored without retraining). bench/results/selection.csv (case,k,seed,chosen,best,regret,
selection_seconds, then seeds_pooled,chosen_alone,regret_alone,training_seconds) is rewritten after each finished
sample: `chosen` is what `compare` recommends for the sample, from the held-out rows of every finished seed of
its case and size pooled (as `compare --seeds N` does); `chosen_alone` is the choice from the sample's own
held-out rows alone; `training_seconds` the time of training both candidates on the full sample. A rerun
resumes.

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


CASES_CSV = RESULTS / "selection.csv"
CASE_COLUMNS = ["case", "k", "seed", "chosen", "best", "regret", "selection_seconds", "seeds_pooled", "chosen_alone",
                "regret_alone", "training_seconds"]
RUNS_CSV = RESULTS / "selection_runs.csv"
RUN_COLUMNS = ["case", "k", "seed", "candidate", "selection", "held_out_f1", "seconds", "test_f1", "full_seconds",
               "predicted"]
WEAK_SOURCE = WORK / "news-model-300-headlines"
CANDIDATES = ["scratch", "finetune"]


def weak_source() -> Classifier:
    """A news model trained on 300 headlines (stratified, seed 0): helps little, and less as k grows."""
    if is_model_folder(WEAK_SOURCE):
        return Classifier.load(WEAK_SOURCE)
    from textshift.compare import sample_stratified

    news = read_labeled("embedded:news")
    model, _ = train_classifier(news.subset(sample_stratified(news.labels, 300, 0)), config=TrainConfig())
    model.save(WEAK_SOURCE, overwrite=True)
    return model


def case_queue() -> list[tuple[str, int, int]]:
    """(case, k, seed), cheapest informative first: small samples, and each built case early."""
    queue = [("news", 50, s) for s in range(3)] + [("news-shuffled-labels", 100, 0)]
    queue += [("news", 100, s) for s in range(3)] + [("news-shuffled-labels", 200, 0), ("news-weak", 500, 0)]
    queue += [("news", 200, s) for s in range(5)] + [("news-weak", 1000, 0), ("news-shuffled-labels", 500, 0)]
    queue += [("news", 500, s) for s in range(5)] + [("news", 1000, s) for s in range(3)]
    queue += [("news", 2000, s) for s in range(3)] + [("news", 3000, 0)]
    queue += [("news-shuffled-labels", 100, s) for s in (1, 2)] + [("news-shuffled-labels", 200, s) for s in (1, 2)]
    queue += [("news-weak", 500, s) for s in (1, 2)] + [("news-shuffled-labels", 500, s) for s in (1, 2)]
    queue += [("news-weak", 1000, s) for s in (1, 2)]
    return queue


def case_choices() -> None:
    """The default selection on every sample of case_queue(); resumable, one row per finished candidate."""
    from transfer_nyt_to_bills import OUT_CSV as BENCH_CSV
    from transfer_nyt_to_bills import SOURCE as NEWS
    from transfer_nyt_to_bills import ensure_source

    from textshift.compare import _evaluate, _scores, sample_stratified
    from textshift.selection import DEFAULT_SELECTION, short_schedule
    from textshift.training import stratified_holdout
    from textshift.transfer import TransferConfig, transfer

    pool, test = read_labeled("embedded:bills-train"), read_labeled("embedded:bills-test")
    bench = pd.read_csv(BENCH_CSV)
    runs = pd.read_csv(RUNS_CSV, dtype={"predicted": str}) if RUNS_CSV.exists() else pd.DataFrame(
        columns=RUN_COLUMNS)
    done = done_keys(CASES_CSV, ["case", "k", "seed"])
    sources = {"news": lambda: (ensure_source(), Classifier.load(NEWS))[1],
               "news-shuffled-labels": shuffled_source, "news-weak": weak_source}
    loaded: dict[str, Classifier] = {}

    def stored(case: str, k: int, seed: int, candidate: str):
        # scratch does not depend on the source: its run on a sample serves every case
        rows = runs[((runs.case == case) | (candidate == "scratch")) & (runs.k == k) & (runs.seed == seed)
                    & (runs.candidate == candidate) & (runs.selection == DEFAULT_SELECTION)]
        return rows.iloc[0] if len(rows) else None

    for case, k, seed in case_queue():
        if (case, str(k), str(seed)) in done:
            continue
        if case not in loaded:
            loaded[case] = sources[case]()
        source = loaded[case]
        sample = pool.subset(sample_stratified(pool.labels, k, seed))
        fit_rows, held_rows = stratified_holdout(sample.labels, 0.25, seed=seed)
        fit, held = sample.subset(fit_rows), sample.subset(held_rows)
        for candidate in CANDIDATES:
            if stored(case, k, seed, candidate) is not None:
                continue
            short = TrainConfig(**{**short_schedule(TrainConfig(), k).to_dict(), "seed": seed})
            started = time.perf_counter()
            model, _ = transfer(source, fit, config=TransferConfig(strategy=candidate, train=short))
            predicted = model.predict(held.texts)
            seconds = time.perf_counter() - started
            test_f1, full_seconds = float("nan"), float("nan")
            in_bench = bench[(bench.strategy == candidate) & (bench.k == k) & (bench.seed == seed)]
            if case == "news" or candidate == "scratch":
                test_f1, full_seconds = float(in_bench.macro_f1.iloc[0]), float(in_bench.train_seconds.iloc[0])
            else:  # the built cases: the candidate on the full sample, scored on the test bills
                started = time.perf_counter()
                model, _ = transfer(source, sample, config=TransferConfig(strategy=candidate,
                                                                          train=TrainConfig(seed=seed)))
                full_seconds = time.perf_counter() - started
                test_f1 = _evaluate(model, test)[0]["macro_f1"]
            row = {"case": case, "k": k, "seed": seed, "candidate": candidate, "selection": DEFAULT_SELECTION,
                   "held_out_f1": round(_scores(held.labels, predicted, sample.classes)[0]["macro_f1"], 4),
                   "seconds": round(seconds, 1), "test_f1": round(test_f1, 4), "full_seconds": round(full_seconds, 1),
                   "predicted": json.dumps(predicted)}
            append_row(RUNS_CSV, row, RUN_COLUMNS)
            runs = pd.concat([runs, pd.DataFrame([row])], ignore_index=True)
            print({key: value for key, value in row.items() if key != "predicted"}, flush=True)
        done.add((case, str(k), str(seed)))
        table = write_case_table(runs, pool, done)
        print(table[(table.case == case) & (table.k == k)].to_dict("records"), flush=True)
    write_case_table(runs, pool, done)  # also when every sample was done before (a changed rule)


def write_case_table(runs: pd.DataFrame, pool: TextData, samples: set) -> pd.DataFrame:
    """bench/results/selection.csv from the finished samples, replaced whole (the pooled choices change as seeds
    finish)."""
    table = case_table(runs, pool, samples)
    aside = CASES_CSV.with_suffix(".tmp")
    table.to_csv(aside, index=False)
    aside.replace(CASES_CSV)
    return table


def case_table(runs: pd.DataFrame, pool: TextData, samples: set) -> pd.DataFrame:
    """One row per finished sample: the choice that `compare` makes for it (the held-out rows of every finished
    seed of its case and size pooled, as `compare --seeds N` does), the best candidate on the test rows, and the
    regret; ``chosen_alone``/``regret_alone`` are the choice from the sample's own held-out rows alone."""
    from textshift.compare import sample_stratified
    from textshift.selection import DEFAULT_SELECTION, pick_pooled
    from textshift.training import stratified_holdout

    by_size: dict[tuple[str, int], list[int]] = {}
    for case, k, seed in sorted((c, int(k), int(s)) for c, k, s in samples):
        by_size.setdefault((case, k), []).append(seed)
    rows = []
    for (case, k), seeds in by_size.items():
        held_out, found = [], {}
        for seed in seeds:
            sample = pool.subset(sample_stratified(pool.labels, k, seed))
            truth = [sample.labels[i] for i in stratified_holdout(sample.labels, 0.25, seed=seed)[1]]
            found[seed] = {c: runs[((runs.case == case) | (c == "scratch")) & (runs.k == k) & (runs.seed == seed)
                                   & (runs.candidate == c) & (runs.selection == DEFAULT_SELECTION)].iloc[0]
                           for c in CANDIDATES}
            held_out.append((truth, {c: json.loads(found[seed][c].predicted) for c in CANDIDATES}))
        chosen, _ = pick_pooled(CANDIDATES, held_out)
        for seed, one in zip(seeds, held_out, strict=True):
            test_f1 = {c: float(found[seed][c].test_f1) for c in CANDIDATES}
            best = max(CANDIDATES, key=lambda c: test_f1[c])
            alone, _ = pick_pooled(CANDIDATES, [one])
            rows.append({"case": case, "k": k, "seed": seed, "chosen": chosen, "best": best,
                         "regret": round(test_f1[best] - test_f1[chosen], 4),
                         "selection_seconds": round(sum(float(found[seed][c].seconds) for c in CANDIDATES), 1),
                         "seeds_pooled": len(seeds), "chosen_alone": alone,
                         "regret_alone": round(test_f1[best] - test_f1[alone], 4),
                         "training_seconds": round(sum(float(found[seed][c].full_seconds) for c in CANDIDATES), 1)})
    return pd.DataFrame(rows, columns=CASE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,300", help="labelled bills per sample (default 100,300)")
    parser.add_argument("--seeds", type=int, default=1, help="samples per size (default 1)")
    parser.add_argument("--selections", default="probe,holdout", help="selection methods (default both)")
    parser.add_argument("--benchmark", action="store_true",
                        help="instead: the current rule's choices on the samples of transfer_nyt_to_bills.py, with "
                             "the real news model (its test scores come from that benchmark's CSV)")
    parser.add_argument("--cases", action="store_true",
                        help="instead: the default selection's regret and cost over the transfer benchmark's "
                             "samples and the cases built to make scratch win (bench/results/selection.csv)")
    args = parser.parse_args()
    if args.cases:
        case_choices()
        return
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
