"""Scoring runs over the API: managers run them, everyone with scoring.read reads them."""

import pytest

from patron.datasets import demo_shop


@pytest.fixture
def shop(client, users, tmp_path):
    """A small demo shop imported by a manager; returns the manager's headers."""
    manager = users.headers("manager")
    path = demo_shop(tmp_path / "shop.csv", customers=150, messy=0.0)
    with path.open("rb") as file:
        response = client.post(
            "/api/v1/imports",
            files={"file": ("shop.csv", file, "text/csv")},
            data={"kind": "orders"},
            headers=manager,
        )
    assert response.status_code == 201, response.json()
    return manager


def test_run_read_list_and_compare(client, users, shop):
    first = client.post("/api/v1/scoring-runs", json={"as_of": "2025-06-30"}, headers=shop)
    assert first.status_code == 201, first.json()
    run1 = first.json()
    assert run1["status"] == "done", run1["message"]
    assert run1["customers"] > 0
    assert run1["actor_id"] == users.id("manager")

    second = client.post("/api/v1/scoring-runs", headers=shop)  # no body: the defaults
    assert second.status_code == 201
    run2 = second.json()
    assert run2["status"] == "done"

    analyst = users.headers("analyst")
    listed = client.get("/api/v1/scoring-runs", headers=analyst).json()
    assert listed["total"] == 2
    assert {r["id"] for r in listed["items"]} == {run1["id"], run2["id"]}
    one = client.get(f"/api/v1/scoring-runs/{run1['id']}", headers=analyst).json()
    assert one["as_of"] == "2025-06-30"

    matrix = client.get(
        f"/api/v1/scoring-runs/{run2['id']}/migration",
        params={"from": run1["id"], "by": "grade"},
        headers=analyst,
    )
    assert matrix.status_code == 200
    body = matrix.json()
    assert len(body["counts"]) == len(body["rows"])
    assert all(len(row) == len(body["cols"]) for row in body["counts"])
    assert sum(map(sum, body["counts"])) > 0
    stages = client.get(
        f"/api/v1/scoring-runs/{run2['id']}/migration",
        params={"from": run1["id"], "by": "lifecycle_stage"},
        headers=analyst,
    )
    assert stages.status_code == 200

    # The latest scores reach the customer list, its filters and the 360.
    customers = client.get("/api/v1/customers", params={"limit": 5}, headers=analyst).json()
    top = customers["items"][0]
    assert top["grade"] is not None and top["predicted_clv"] is not None
    clvs = [c["predicted_clv"] for c in customers["items"]]
    assert clvs == sorted(clvs, reverse=True)
    graded = client.get("/api/v1/customers", params={"grade": top["grade"]}, headers=analyst)
    assert all(c["grade"] == top["grade"] for c in graded.json()["items"])
    view = client.get(f"/api/v1/customers/{top['id']}", headers=analyst).json()
    assert view["score"]["run_id"] == run2["id"]
    assert len(view["score_history"]) == 2


def test_only_managers_run_scoring(client, users):
    for role in ("staff", "analyst"):
        response = client.post("/api/v1/scoring-runs", headers=users.headers(role))
        assert response.status_code == 403
    assert client.get("/api/v1/scoring-runs", headers=users.headers("staff")).json() == {
        "items": [],
        "total": 0,
    }


def test_bad_scoring_requests(client, users):
    manager = users.headers("manager")
    for body, field in [
        ({"model": "magic"}, "model"),
        ({"as_of": "2025-02-30"}, "as_of"),
        ({"horizon": "forever"}, "horizon"),
        ({"as_of": 20250101}, "as_of"),
    ]:
        response = client.post("/api/v1/scoring-runs", json=body, headers=manager)
        assert response.status_code == 422, body
        assert response.json()["field"] == field
    assert client.get("/api/v1/scoring-runs/4242", headers=manager).status_code == 404
    missing_from = client.get("/api/v1/scoring-runs/1/migration", headers=manager)
    assert missing_from.status_code == 422
    assert missing_from.json()["field"] == "from"
    bad_by = client.get(
        "/api/v1/scoring-runs/1/migration", params={"from": 1, "by": "mood"}, headers=manager
    )
    assert bad_by.json()["field"] == "by"
