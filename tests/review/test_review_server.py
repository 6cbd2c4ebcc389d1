"""The review API: reads, writes, undo, export, and the security rules (token, host, JSON writes, paths)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pandas as pd
import pytest
from review_helpers import SCRIPT_TEXT, make_store
from fastapi.testclient import TestClient

from textshift.errors import ConfigError
from textshift.review import start_review
from textshift.review.export import CHANGE_COLUMNS
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


def assert_secured(response) -> None:
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/items/1000000000000000000000000000000", None),
    ("GET", "/api/items?offset=1000000000000000000000000000000", None),
    ("POST", "/api/duplicates/1000000000000000000000000000000/keep", {"row": 5}),
    ("POST", "/api/duplicates/-1/keep", {"row": 0}),
    ("POST", "/api/duplicates/5/keep", {"row": 10**30}),
    ("POST", "/api/edits", {"row": 10**30, "action": "delete"}),
    ("POST", "/api/edits", {"row": True, "action": "delete"}),
    ("POST", "/api/edits", {"row": "1", "action": "delete"}),
    ("POST", "/api/export", {"name": "x" * 250 + ".csv"}),
    ("POST", "/api/export", {"name": "a\nb.csv"}),
    ("POST", "/api/export", {"name": "clean.csv", "overwrite": "yes"}),
])
def test_bad_numbers_and_names_are_one_line_400s(client, method, path, body):
    test_client, store, exports = client
    response = test_client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"] and "\n" not in response.json()["error"]
    assert_secured(response)
    assert len(store.edits()) == 0 and list(exports.iterdir()) == []


def test_long_values_are_cut_in_errors_and_huge_bodies_refused(client):
    test_client, store, _ = client
    long_label = test_client.post("/api/edits", json={"row": 1, "action": "relabel", "label": "x" * 500_000})
    assert long_label.status_code == 400 and len(long_label.text) < 400
    huge = test_client.post("/api/edits", json={"row": 1, "action": "relabel", "label": "x" * 2_000_000})
    assert huge.status_code == 413 and len(huge.text) < 400
    assert_secured(huge)
    assert len(store.edits()) == 0


def test_an_internal_error_is_a_500_with_the_same_headers(client, monkeypatch):
    test_client, store, _ = client

    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "summary", broken)
    response = test_client.get("/api/summary")
    assert response.status_code == 500 and "disk on fire" not in response.text
    assert_secured(response)


def test_export_asks_before_replacing_a_file_but_never_replaces_the_data(review_store, review_csv):
    data, store = review_store
    (review_csv.parent / "mytest.csv").write_text("text,label\nmy own row,Health\n")
    app = create_app(store, data, export_dir=review_csv.parent)
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        foreign = test_client.post("/api/export", json={"name": "mytest.csv", "overwrite": True})
        assert foreign.status_code == 400 and "is not a review export" in foreign.json()["error"]  # never asked
        (review_csv.parent / "mytest.changes.csv").write_text(",".join(CHANGE_COLUMNS) + "\n")  # an export
        assert test_client.post("/api/export", json={"name": "mytest.csv"}).status_code == 409  # the page asks
        assert (review_csv.parent / "mytest.csv").read_text() == "text,label\nmy own row,Health\n"
        for overwrite in (False, True):  # the data is refused outright: 400, nothing to confirm
            refused = test_client.post("/api/export", json={"name": review_csv.name, "overwrite": overwrite})
            assert refused.status_code == 400 and "never modifies" in refused.json()["error"]


@pytest.mark.parametrize("token", ["", "short", "x" * 15, "has space in it!!", "a&b=c#d" * 4])
def test_weak_or_unsafe_tokens_are_refused(review_store, review_csv, token):
    data, store = review_store
    with pytest.raises(ConfigError, match="token must be at least 16"):
        create_app(store, data, token=token)
    with pytest.raises(ConfigError, match="token must be at least 16"):
        start_review(review_csv, label_column="topic", host="0.0.0.0", token=token)


def test_a_missing_or_empty_token_header_never_matches(review_store):
    data, store = review_store
    app = create_app(store, data, token="t" * 16, loopback_only=False)
    with TestClient(app, base_url="http://192.0.2.1:8765") as test_client:
        assert test_client.get("/api/summary").status_code == 401
        assert test_client.get("/api/summary", headers={"X-Textshift-Token": ""}).status_code == 401
        assert test_client.get("/api/summary", headers={"X-Textshift-Token": "t" * 16}).status_code == 200


@pytest.mark.parametrize("port", [-1, 70000, "abc", None, True, 1.5])
def test_bad_ports_are_config_errors(review_store, review_csv, port):
    with pytest.raises(ConfigError, match="port must be a whole number between 0 and 65535"):
        start_review(review_csv, label_column="topic", port=port)
