"""The review server under concurrent clients: no request fails, no acknowledged edit is lost, and two clients
editing one item end with the later edit, both edits in the log in order.

The driver is bench/review_load.py (its full run is 20 clients, 2,000 operations; here 400).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import review_load  # noqa: E402

from textshift.review import load_data  # noqa: E402
from textshift.review.store import ReviewStore  # noqa: E402

DATA = "embedded:bills-test"  # 1,449 real bills; scores are made up (no model), the server and log are real


def test_twenty_clients_lose_no_edit(tmp_path):
    result = review_load.run_load_test(folder=tmp_path, data=DATA, clients=20, ops=400, seed=0)
    assert [record.error for record in result.errors] == []
    audit = result.audit
    assert audit.problems == [] and audit.lost_edits == 0 and audit.unacknowledged == 0
    assert audit.acknowledged > 100  # the mix really wrote (about 40% of the operations)
    rows = {row["op"]: row for row in result.rows()}
    assert set(review_load.MIX) <= set(rows) and rows["overall"]["count"] == 400


def test_two_clients_editing_one_item_last_write_wins_and_both_are_logged(tmp_path):
    import httpx

    store_path = review_load.prepare_store(tmp_path, data=DATA)
    row, rounds = 7, 12
    labels = sorted(set(load_data(DATA).labels))[:2]
    answers: list[list[dict]] = [[], []]
    with review_load.ServerProcess(store_path, data=DATA) as server:
        headers = {review_load.TOKEN_HEADER: server.token}
        clients = [httpx.Client(base_url=server.base_url, headers=headers, timeout=30) for _ in range(2)]
        together = threading.Barrier(2)

        def edit(index: int) -> None:
            for _ in range(rounds):
                together.wait()  # both requests of a round are in flight at once
                response = clients[index].post("/api/edits", json={"row": row, "action": "relabel",
                                                                   "label": labels[index]})
                assert response.status_code == 200, response.text
                answers[index].append(response.json()["item"])

        threads = [threading.Thread(target=edit, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(len(given) == rounds for given in answers)
        last = max(answers[0] + answers[1], key=lambda answer: answer["edit"])
        assert clients[0].get(f"/api/items/{row}").json()["current_label"] == last["current_label"]
        for client in clients:
            client.close()
    # The server was killed with SIGKILL: the log on disk is all that is left.
    with ReviewStore.open(store_path) as store:
        log = store.edits()
        state = store.decisions().set_index("row")
    assert log["id"].tolist() == sorted(answer["edit"] for answer in answers[0] + answers[1])  # both, every round
    assert log["new_label"].tolist() == [labels[0] if edit_id in {a["edit"] for a in answers[0]} else labels[1]
                                         for edit_id in log["id"]]
    assert log["old_label"].tolist()[1:] == log["new_label"].tolist()[:-1]  # each edit saw the one before it
    assert log["time"].tolist() == sorted(log["time"])
    assert state.loc[row, "label"] == log["new_label"].iloc[-1] == last["current_label"]


def test_the_audit_finds_a_lost_edit(tmp_path):
    """The load test's own check: an acknowledged edit missing from the log, or a changed state, is counted."""
    store_path = review_load.prepare_store(tmp_path, data=DATA)
    with ReviewStore.open(store_path) as store:
        applied = [store.apply(3, "keep"), store.apply(4, "relabel", label=store.classes[0])]
    records = [review_load.Record(0, "keep", 0.01, True, answer={"item": applied[0]}),
               review_load.Record(0, "relabel", 0.01, True, answer={"item": applied[1]})]
    assert review_load.audit_log(store_path, records, data=DATA).lost_edits == 0
    phantom = dict(applied[0], edit=999, row=5)
    audit = review_load.audit_log(store_path, [*records, review_load.Record(1, "keep", 0.01, True,
                                                                           answer={"item": phantom})], data=DATA)
    assert audit.missing == {"keep": 1} and audit.state_mismatches == 1 and audit.lost_edits == 2
    assert review_load.audit_log(store_path, records[:1], data=DATA).unacknowledged == 1


def test_operations_are_dealt_to_every_client_reproducibly():
    plan = review_load.plan_operations(ops=10, clients=3, seed=1, rows=50, classes=["a", "b"])
    assert [len(operations) for operations in plan] == [4, 3, 3]
    assert plan == review_load.plan_operations(ops=10, clients=3, seed=1, rows=50, classes=["a", "b"])
