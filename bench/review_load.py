"""Review server load test: concurrent clients against the real review server on loopback, then an audit of the log.

    python bench/review_load.py [--clients 20] [--ops 2000] [--seed 0] [--data embedded:bills] [--report FOLDER]

The server is the one `textshift review` runs (``start_review``: FastAPI on uvicorn, bound to 127.0.0.1, here
with a token that every API call carries), in its own process over an edit log of the real bills. Without
``--report`` the items get made-up suspicion scores (seeded): the load test measures the server and the edit log,
not scoring, and a real inspect run takes minutes on a CPU. With ``--report`` (a `textshift inspect -o` folder of
the same data) the real scores are used.

``--clients`` threads, each with its own HTTP connection, share ``--ops`` operations drawn from a fixed mix:
reads (list items with random filters, item detail, counters) and writes (keep, relabel, delete, ambiguous,
undo). When every client is done the server is killed with SIGKILL (no shutdown handler runs) and the edit log is
audited: every acknowledged write must be in it, nothing unacknowledged may be, and the final state of every item
must equal a replay of the acknowledged writes in commit order.

Appends one row per operation kind, plus ``reads``, ``writes`` and ``overall``, to bench/results/review_load.csv
(op,count,errors,p50_ms,p95_ms,p99_ms,requests_per_second,lost_edits,clients,ops,seed,machine) and prints them.
Exits with status 1 when any request failed or any edit was lost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, append_row, machine  # noqa: E402

OUT = RESULTS / "review_load.csv"
COLUMNS = ["op", "count", "errors", "p50_ms", "p95_ms", "p99_ms", "requests_per_second", "lost_edits", "clients",
           "ops", "seed", "machine"]
TOKEN_ENV = "TEXTSHIFT_REVIEW_LOAD_TOKEN"
TOKEN_HEADER = "X-Textshift-Token"

# Share of each operation in the mix: 60% reads, 40% writes.
MIX = {"list": 0.25, "detail": 0.20, "summary": 0.15,
       "keep": 0.10, "relabel": 0.12, "delete": 0.06, "ambiguous": 0.06, "undo": 0.06}
READS = ("list", "detail", "summary")
WRITES = ("keep", "relabel", "delete", "ambiguous", "undo")
STATUS_OF = {"keep": "kept", "relabel": "relabeled", "delete": "deleted", "ambiguous": "ambiguous"}
SEARCH_WORDS = ("act", "health", "tax", "program", "amend", "education", "defense", "water", "veterans")


# ---------------------------------------------------------------------------------------------------- the data
def synthetic_items(data, *, seed: int = 0) -> pd.DataFrame:
    """An inspect items table for ``data`` with made-up, seeded scores (no model): half the items suspicious."""
    rng = np.random.default_rng(seed)
    n = len(data)
    labels = data.frame["label"].tolist()
    classes = sorted(set(labels))
    score = rng.random(n).round(4)
    suspicious = score >= 0.5
    predicted = [classes[(classes.index(label) + 1) % len(classes)] if flagged else label
                 for label, flagged in zip(labels, suspicious, strict=True)]
    return pd.DataFrame({
        "row": np.arange(n), "text": data.frame["text"].to_numpy(), "label": labels, "predicted": predicted,
        "predicted_probability": rng.random(n).round(3), "suggested_label": np.where(suspicious, predicted, ""),
        "score": score, "label_quality": 1 - score, "margin": rng.random(n).round(3),
        "issues": np.where(suspicious, "label_error;misclassified", ""), "suspicious": suspicious,
        "label_issue": suspicious, "misclassified": suspicious, "unsure": rng.random(n) < 0.05,
        "conflicting_duplicate": False, "split_leak": False, "duplicate_group": -1,
        "similar_rows": [f"{(i + 1) % n};{(i + 7) % n}" for i in range(n)]})


def prepare_store(folder: Path, *, data: str = "embedded:bills", report: str | os.PathLike | None = None,
                  seed: int = 0) -> Path:
    """A new edit log for ``data`` in ``folder``: real scores from ``report`` or made-up ones."""
    from textshift.review import load_data, open_store
    from textshift.review.store import ReviewStore

    path = Path(folder) / "review-load.sqlite"
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    dataset = load_data(data)
    if report is not None:
        store = open_store(dataset, store=path, report=report)
    else:
        store = ReviewStore.create(path, data=dataset, items=synthetic_items(dataset, seed=seed),
                                   classes=sorted(set(dataset.labels)))
    store.close()
    return path


# ---------------------------------------------------------------------------------------------------- the server
class ServerProcess:
    """The review server (``start_review``) in a child process, on 127.0.0.1 with a token; killed with SIGKILL."""

    def __init__(self, store: Path, *, data: str = "embedded:bills"):
        self.store, self.data = Path(store), data
        self.token = secrets.token_urlsafe(24)
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def start(self, timeout: float = 120.0) -> ServerProcess:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **{TOKEN_ENV: self.token})
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.store), "--data", self.data],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()  # the URL, printed once the server accepts connections
        if not line.startswith("http"):
            self.kill()
            raise RuntimeError(f"the review server did not start: {line!r} {self.process.stderr.read()[-2000:]}")
        self.base_url = line.strip().split("?")[0].rstrip("/")
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.base_url}/api/summary", headers={TOKEN_HEADER: self.token}, timeout=5
                          ).raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash; only what was committed survives."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def serve(store: str, data: str) -> None:
    """Body of the child process: the real review server over ``store``, in the foreground."""
    from textshift.review import start_review

    server = start_review(data, store=store, port=0, token=os.environ[TOKEN_ENV],
                          export_dir=Path(store).parent, background=False)
    print(server.url, flush=True)
    try:
        server.run()
    finally:
        server.store.close()


# ---------------------------------------------------------------------------------------------------- the clients
@dataclass
class Operation:
    kind: str
    path: str
    params: dict | None = None
    body: dict | None = None


@dataclass
class Record:
    """One finished request: what it was, how long it took, and the server's answer to a write."""
    client: int
    kind: str
    seconds: float
    ok: bool
    error: str = ""
    answer: dict | None = None


def plan_operations(*, ops: int, clients: int, seed: int, rows: int, classes: list[str]) -> list[list[Operation]]:
    """``ops`` operations in the fixed mix, dealt round-robin to ``clients`` clients; the same for the same seed."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(list(MIX), size=ops, p=list(MIX.values()))
    plans: list[list[Operation]] = [[] for _ in range(clients)]
    for i, kind in enumerate(kinds):
        row = int(rng.integers(rows))
        if kind == "list":
            params = {"view": str(rng.choice(["suspicious", "all"])), "offset": int(rng.integers(0, 10)) * 50,
                      "limit": 50}
            for name, choices in (("label", classes), ("issue", ["label_error", "misclassified", "unsure"]),
                                  ("status", ["unreviewed", "reviewed", "relabeled", "deleted"]),
                                  ("q", SEARCH_WORDS)):
                if rng.random() < 0.3:
                    params[name] = str(rng.choice(choices))
            operation = Operation("list", "/api/items", params=params)
        elif kind == "detail":
            operation = Operation("detail", f"/api/items/{row}")
        elif kind == "summary":
            operation = Operation("summary", "/api/summary")
        elif kind == "undo":
            operation = Operation("undo", "/api/undo", body={})
        else:
            body = {"row": row, "action": str(kind)}
            if kind == "relabel":
                body["label"] = str(rng.choice(classes))
            operation = Operation(str(kind), "/api/edits", body=body)
        plans[i % clients].append(operation)
    return plans


def run_clients(base_url: str, token: str, plans: list[list[Operation]], *, timeout: float = 60.0
                ) -> tuple[list[Record], float]:
    """Run every client's plan in its own thread, all starting together; the records and the wall seconds."""
    import httpx

    records: list[list[Record]] = [[] for _ in plans]
    start = threading.Barrier(len(plans) + 1)

    def client(index: int) -> None:
        headers = {TOKEN_HEADER: token, "Content-Type": "application/json"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as http:
            start.wait()
            for operation in plans[index]:
                began = time.perf_counter()
                try:
                    if operation.body is None:
                        response = http.get(operation.path, params=operation.params)
                    else:
                        response = http.post(operation.path, json=operation.body)
                    answer = response.json()
                    ok = response.status_code == 200
                    error = "" if ok else f"HTTP {response.status_code}: {answer}"
                except (httpx.HTTPError, ValueError) as exc:  # ValueError: an answer that is not JSON
                    answer, ok, error = None, False, f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - began
                records[index].append(Record(index, operation.kind, seconds, ok, error,
                                             answer if ok and operation.kind in WRITES else None))

    threads = [threading.Thread(target=client, args=(i,), name=f"review-load-{i}") for i in range(len(plans))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return [record for client_records in records for record in client_records], wall


# ---------------------------------------------------------------------------------------------------- the audit
@dataclass
class Audit:
    """What the edit log says about the acknowledged writes."""
    acknowledged: int = 0            # log entries the clients were told about
    missing: dict = field(default_factory=dict)  # op kind -> acknowledged entries absent from the log (or altered)
    unacknowledged: int = 0          # log entries no client was told about
    state_mismatches: int = 0        # items whose final state differs from the replay
    problems: list[str] = field(default_factory=list)

    @property
    def lost_edits(self) -> int:
        return sum(self.missing.values()) + self.state_mismatches


def audit_log(store_path: Path, records: list[Record], *, data: str = "embedded:bills") -> Audit:
    """Check the edit log against the acknowledged writes and replay them in commit order.

    The log's ids are given in commit order (SQLite AUTOINCREMENT inside one write transaction), and every
    answer carries the ids of the entries it wrote, so the replay needs no knowledge of the clients' timing.
    """
    from textshift.review import load_data
    from textshift.review.store import ReviewStore

    dataset = load_data(data)
    original = dict(enumerate(dataset.labels))
    with ReviewStore.open(store_path, data=dataset) as store:
        log = store.edits().set_index("id")
        final = {int(r.row): (r.status, r.label) for r in store.decisions().itertuples()}
    audit = Audit()
    events = []  # (first log id, kind, answer items)
    for record in records:
        if record.answer is None:
            continue
        entries = [record.answer["item"]] if record.kind != "undo" else record.answer["items"]
        for entry in entries:
            audit.acknowledged += 1
            logged = log.loc[entry["edit"]] if entry["edit"] in log.index else None
            expected_action = "undo" if record.kind == "undo" else record.kind
            if logged is None or int(logged["row"]) != entry["row"] or logged["action"] != expected_action:
                audit.missing[record.kind] = audit.missing.get(record.kind, 0) + 1
                audit.problems.append(f"acknowledged {record.kind} of row {entry['row']} (entry {entry['edit']}) "
                                      f"is not in the log as such")
        if entries:
            events.append((min(entry["edit"] for entry in entries), record.kind, entries))
    acknowledged_ids = {entry["edit"] for _, _, entries in events for entry in entries}
    audit.unacknowledged = len(set(log.index) - acknowledged_ids)

    state: dict[int, tuple[str, str | None]] = {}
    batches: list[list[tuple[int, int, tuple | None]]] = []  # undo stack: (entry id, row, state before)
    for _, kind, entries in sorted(events, key=lambda event: event[0]):
        if kind == "undo":
            top = batches.pop() if batches else []
            undone = {entry["undoes"] for entry in entries}
            if {edit_id for edit_id, _, _ in top} != undone:
                audit.problems.append(f"undo {sorted(undone)} did not undo the latest batch {top}")
            for _, row, before in reversed(top):
                if before is None:
                    state.pop(row, None)
                else:
                    state[row] = before
            continue
        entry = entries[0]
        row = entry["row"]
        before = state.get(row)
        label = entry["current_label"] if kind == "relabel" else (before[1] if before else original[row])
        state[row] = (STATUS_OF[kind], label)
        if (entry["status"], entry["current_label"]) != state[row]:
            audit.problems.append(f"the answer to {kind} of row {row} said {entry['status']}/"
                                  f"{entry['current_label']}; the replay gives {state[row]}")
        batches.append([(entry["edit"], row, before)])
    for row in set(state) | set(final):
        if state.get(row) != final.get(row):
            audit.state_mismatches += 1
            audit.problems.append(f"row {row}: log state {final.get(row)}, replay {state.get(row)}")
    return audit


# ---------------------------------------------------------------------------------------------------- the run
@dataclass
class LoadResult:
    records: list[Record]
    wall_seconds: float
    audit: Audit

    @property
    def errors(self) -> list[Record]:
        return [record for record in self.records if not record.ok]

    def rows(self) -> list[dict]:
        """One summary row per operation kind, then ``reads``, ``writes`` and ``overall``."""
        groups = {kind: [r for r in self.records if r.kind == kind] for kind in MIX}
        groups["reads"] = [r for r in self.records if r.kind in READS]
        groups["writes"] = [r for r in self.records if r.kind in WRITES]
        groups["overall"] = self.records
        rows = []
        for name, records in groups.items():
            if not records:
                continue
            milliseconds = np.array([r.seconds for r in records]) * 1000
            p50, p95, p99 = np.percentile(milliseconds, [50, 95, 99])
            lost = self.audit.lost_edits if name in ("writes", "overall") else self.audit.missing.get(name, 0)
            rows.append({"op": name, "count": len(records), "errors": sum(not r.ok for r in records),
                         "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "p99_ms": round(p99, 1),
                         "requests_per_second": round(len(records) / self.wall_seconds, 1), "lost_edits": lost})
        return rows


def run_load_test(*, folder: str | os.PathLike, data: str = "embedded:bills", clients: int = 20,
                  ops: int = 2000, seed: int = 0, report: str | os.PathLike | None = None) -> LoadResult:
    """Prepare a log in ``folder``, start the server, run the clients, kill the server, audit the log."""
    from textshift.review import load_data

    store = prepare_store(Path(folder), data=data, report=report, seed=seed)
    dataset = load_data(data)
    plans = plan_operations(ops=ops, clients=clients, seed=seed, rows=len(dataset),
                            classes=sorted(set(dataset.labels)))
    with ServerProcess(store, data=data) as server:
        records, wall = run_clients(server.base_url, server.token, plans)
    return LoadResult(records, wall, audit_log(store, records, data=data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--ops", type=int, default=2000, help="operations in total, shared by the clients")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="embedded:bills")
    parser.add_argument("--report", default=None, help="a `textshift inspect -o` folder of --data (real scores)")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # the server's child process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data)
        return
    if args.clients < 1 or args.ops < args.clients:
        parser.error(f"--ops must be at least --clients (>= 1); got --clients {args.clients} --ops {args.ops}")
    with tempfile.TemporaryDirectory(prefix="review-load-") as folder:
        result = run_load_test(folder=folder, data=args.data, clients=args.clients, ops=args.ops,
                               seed=args.seed, report=args.report)
    rows = result.rows()
    for row in rows:
        append_row(OUT, row | {"clients": args.clients, "ops": args.ops, "seed": args.seed, "machine": machine()},
                   COLUMNS)
    shown = ["op", "count", "errors", "p50_ms", "p95_ms", "p99_ms", "requests_per_second", "lost_edits"]
    print(pd.DataFrame(rows)[shown].to_string(index=False))
    audit = result.audit
    print(f"\n{len(result.records):,} requests from {args.clients} clients in {result.wall_seconds:.1f} s; "
          f"{audit.acknowledged:,} acknowledged log entries, {audit.lost_edits} lost, "
          f"{audit.unacknowledged} unacknowledged; {len(result.errors)} errors")
    for record in result.errors[:10]:
        print(f"error: client {record.client} {record.kind}: {record.error}")
    for problem in audit.problems[:10]:
        print(f"audit: {problem}")
    if result.errors or audit.lost_edits or audit.unacknowledged or audit.problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
