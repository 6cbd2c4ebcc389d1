"""The review API: reads, writes, undo, export, and the security rules (token, host, JSON writes, paths)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pandas as pd
import pytest
from review_helpers import SCRIPT_TEXT, make_store
from fastapi.testclient import TestClient

from textshift.review.server import create_app, is_loopback

JSON = {"Content-Type": "application/json"}


@pytest.fixture()
def client(review_store, tmp_path):
    data, store = review_store
    exports = tmp_path / "exports"
    exports.mkdir()
    app = create_app(store, data, export_dir=exports)
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        yield test_client, store, exports


def test_page_and_static_files_carry_security_headers(client):
    test_client, _, _ = client
    page = test_client.get("/")
    assert page.status_code == 200 and "textshift review" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert test_client.get("/static/app.js").status_code == 200


def test_items_are_paged_server_side_and_text_comes_back_verbatim(client):
    test_client, _, _ = client
    page = test_client.get("/api/items", params={"limit": 5}).json()
    assert page["total"] == 21 and len(page["items"]) == 5
    assert page["items"][0]["text"] == SCRIPT_TEXT
    second = test_client.get("/api/items", params={"limit": 5, "offset": 5}).json()
    assert {i["row"] for i in page["items"]}.isdisjoint(i["row"] for i in second["items"])
    filtered = test_client.get("/api/items", params={"issue": "conflict", "q": "duplicate"}).json()
    assert [i["row"] for i in filtered["items"]] == [5, 6]
    assert test_client.get("/api/items", params={"issue": "nope"}).status_code == 400
    detail = test_client.get("/api/items/5").json()
    assert [d["row"] for d in detail["duplicates"]] == [5, 6] and len(detail["similar"]) == 2


def test_edit_undo_and_counter(client):
    test_client, store, _ = client
    answer = test_client.post("/api/edits", json={"row": 3, "action": "relabel", "label": "Health"}).json()
    assert answer["item"]["status"] == "relabeled" and answer["summary"]["decided"] == 1
    assert store.item(3)["current_label"] == "Health"  # already in the log when the answer arrives
    assert test_client.post("/api/edits", json={"row": 3, "action": "relabel", "label": "Nope"}).status_code == 400
    keep = test_client.post("/api/duplicates/5/keep", json={"row": 5}).json()
    assert len(keep["items"]) == 2 and keep["summary"]["reviewed"] == 2
    undone = test_client.post("/api/undo", json={}).json()
    assert {i["row"] for i in undone["items"]} == {5, 6}
    log = test_client.get("/api/edits").json()["edits"]
    assert [e["action"] for e in log] == ["relabel", "keep", "delete", "undo", "undo"]


def test_export_writes_inside_the_folder_only(client, review_csv):
    test_client, store, exports = client
    store.apply(2, "delete")
    answer = test_client.post("/api/export", json={"name": "clean.csv"})
    assert answer.status_code == 200, answer.text
    assert len(pd.read_csv(exports / "clean.csv")) == 39 and (exports / "clean.changes.csv").exists()
    assert test_client.post("/api/export", json={"name": "clean.csv"}).status_code == 409
    assert test_client.post("/api/export", json={"name": "clean.csv", "overwrite": True}).status_code == 200
    for name in ("../escape.csv", "/tmp/x.csv", "a/b.csv", "..%2Fx.csv", str(review_csv)):
        refused = test_client.post("/api/export", json={"name": name})
        assert refused.status_code == 400, name
    assert sorted(p.name for p in exports.iterdir()) == ["clean.changes.csv", "clean.csv"]
    assert not (exports.parent / "escape.csv").exists()


def test_writes_must_be_json_and_same_origin(client):
    test_client, store, _ = client
    form = test_client.post("/api/edits", data={"row": "1", "action": "delete"})
    assert form.status_code == 415
    plain = test_client.post("/api/edits", content=json.dumps({"row": 1, "action": "delete"}),
                             headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    cross = test_client.post("/api/edits", json={"row": 1, "action": "delete"},
                             headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    same = test_client.post("/api/edits", json={"row": 1, "action": "delete"},
                            headers={"Origin": "http://127.0.0.1:8765"})
    assert same.status_code == 200
    assert len(store.edits()) == 1


def test_loopback_server_answers_only_loopback_host_names(review_store):
    data, store = review_store
    app = create_app(store, data)
    with TestClient(app, base_url="http://evil.example") as rebound:
        assert rebound.get("/api/summary").status_code == 403
    with TestClient(app, base_url="http://localhost:9") as local:
        assert local.get("/api/summary").status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_token_is_required_on_a_non_loopback_address(review_csv, server_process):
    """A real server bound to 0.0.0.0 prints a token URL; without the token nothing is read or written."""
    data, store = make_store(review_csv)
    store.close()
    server = server_process(review_csv, "--host", "0.0.0.0")
    assert "?token=" in server.url
    token = server.url.split("?token=")[1]
    edit = json.dumps({"row": 1, "action": "delete"}).encode()

    def call(path, body=None, headers=None):
        request = urllib.request.Request(server.base() + path, data=body, method="POST" if body else "GET",
                                         headers={**JSON, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                return response.status, json.loads(body) if path.startswith("/api/") else body
        except urllib.error.HTTPError as exc:
            return exc.code, None

    assert call("/api/edits", edit)[0] == 401
    assert call("/api/edits", edit, {"X-Textshift-Token": "wrong"})[0] == 401
    assert call("/api/summary")[0] == 401
    status, answer = call("/api/edits", edit, {"X-Textshift-Token": token})
    assert status == 200 and answer["item"]["status"] == "deleted"
    assert call("/", None)[0] == 200  # the page itself is static; its API calls carry the token
