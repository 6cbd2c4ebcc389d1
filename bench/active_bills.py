"""Which bills to label: active learning from the news model on the bills, against random labelling.

Source: the news model (bench/work/news-model, trained as in transfer_nyt_to_bills.py). Pool: the 3,000
``bills-train`` rows with their labels hidden, each revealed only when a strategy chooses it. Test: the 1,449
``bills-test`` rows. Cold start (0 labels) and warm start (50 random labels first), rounds of 50 up to 500
labels, each strategy x 3 seeds, retrained with ``finetune`` from the news model and with ``scratch`` from its
backbone (same choices: separates choosing from pretraining). The default strategy's rows are written twice,
also under the name ``default``.

Writes bench/results/active_bills.csv (strategy,start,model,labels,seed,accuracy,macro_f1,seconds). Resumable:
each run keeps the rows it chose in bench/work/active-bills/RUN.json after every round, and a rerun skips the
rounds already in the CSV and retrains once on the saved rows before going on.

The full grid is many hours on a 2-core CPU (one MiniLM fine-tuning per round). Smoke test::

    python bench/active_bills.py --strategies random,kmeans --starts warm --models finetune --seeds 1 \\
        --rounds 50,100 --pool 300 --test 200 --epochs 1 --out /tmp/active_smoke.csv
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

from common import RESULTS, WORK, append_row, done_keys

from textshift.data import read_labeled
from textshift.suggest import DEFAULT_STRATEGY, label_loop
from textshift.training import TrainConfig

SOURCE = WORK / "news-model"
RUNS = WORK / "active-bills"
OUT_CSV = RESULTS / "active_bills.csv"
COLUMNS = ["strategy", "start", "model", "labels", "seed", "accuracy", "macro_f1", "seconds"]
KEY = ["strategy", "start", "model", "labels", "seed"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_source() -> None:
    from textshift.model import is_model_folder
    from textshift.training import train_classifier

    if is_model_folder(SOURCE):
        return
    log("training the news source model on all headlines")
    model, _ = train_classifier(read_labeled("embedded:news"), config=TrainConfig(), progress=False)
    model.save(SOURCE, overwrite=True)


def run_one(strategy: str, start: str, model: str, seed: int, rounds: list[int], pool, test, args) -> None:
    out = Path(args.out)
    done = done_keys(out, KEY)
    names = [strategy] + (["default"] if strategy == args.default else [])
    wanted = [r for r in rounds if any((n, start, model, str(r), str(seed)) not in done for n in names)]
    if not wanted:
        return
    state_path = RUNS / f"{out.stem}-{strategy}-{start}-{model}-{seed}.json"
    saved = json.loads(state_path.read_text()) if state_path.exists() else {"rows": [], "labels": 0}
    config = TrainConfig(seed=seed, **({"epochs": args.epochs} if args.epochs else {}))
    warm = args.warm if start == "warm" else 0

    def on_round(record) -> None:
        saved["rows"] = saved["rows"] + record.chosen
        saved["labels"] = record.labels
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved))
        os.replace(tmp, state_path)
        for name in names:
            if record.accuracy is None:
                continue
            append_row(out, {"strategy": name, "start": start, "model": model, "labels": record.labels, "seed": seed,
                             "accuracy": round(record.accuracy, 4), "macro_f1": round(record.macro_f1, 4),
                             "seconds": round(record.seconds, 1)}, COLUMNS)
        log(f"{strategy:<9} {start:<4} {model:<8} seed={seed} labels={record.labels:<4} "
            f"macro-F1 {record.macro_f1 if record.macro_f1 is None else round(record.macro_f1, 4)} "
            f"({record.seconds:.0f}s)")

    label_loop(args.source, pool, pool.labels, rounds=rounds, strategy=strategy, model=model, seed=seed, test=test,
               warm_start=warm, train_config=config, labeled_rows=saved["rows"], on_round=on_round,
               cache_dir=WORK / "suggest-cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default="random,margin,entropy,kmeans,coverage,auto")
    parser.add_argument("--default", default=DEFAULT_STRATEGY,
                        help=f"strategy also written as 'default' (textshift's default, {DEFAULT_STRATEGY!r})")
    parser.add_argument("--starts", default="cold,warm")
    parser.add_argument("--models", default="finetune,scratch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", default=",".join(str(k) for k in range(50, 501, 50)))
    parser.add_argument("--warm", type=int, default=50, help="random labels of the warm start")
    parser.add_argument("--pool", type=int, default=0, help="use only the first N pool rows (0: all 3,000)")
    parser.add_argument("--test", type=int, default=0, help="use only the first N test rows (0: all 1,449)")
    parser.add_argument("--epochs", type=int, default=0, help="fine-tuning epochs (0: textshift's default)")
    parser.add_argument("--source", default=str(SOURCE))
    parser.add_argument("--out", default=str(OUT_CSV))
    args = parser.parse_args()
    if args.source == str(SOURCE):
        ensure_source()
    pool = read_labeled("embedded:bills-train")
    test = read_labeled("embedded:bills-test")
    if args.pool:
        pool = pool.subset(range(min(args.pool, len(pool))))
    if args.test:
        test = test.subset(range(min(args.test, len(test))))
    rounds = [int(r) for r in args.rounds.split(",")]
    for seed in range(args.seeds):
        for start in args.starts.split(","):
            for model in args.models.split(","):
                for strategy in args.strategies.split(","):
                    run_one(strategy, start, model, seed, rounds, pool, test, args)
    log(f"done; results in {args.out}")


if __name__ == "__main__":
    main()
