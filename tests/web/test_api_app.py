"""The application shell: schema check, health, OpenAPI, JSON errors for unknown routes."""

import pytest
from fastapi.testclient import TestClient

from patron.crm.migrate import SchemaError
from patron.web.app import create_app


def test_healthz_answers_after_a_query(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_an_unmigrated_database_is_refused_with_the_command_to_run(tmp_path):
    with pytest.raises(SchemaError, match="patron db upgrade"):
        create_app(f"sqlite:///{tmp_path / 'empty.db'}")


def test_the_check_can_be_skipped(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'empty.db'}", check_schema=False)
    with TestClient(app) as client:
        assert client.get("/healthz").json()["database"] == "ok"


def test_openapi_lists_the_paths_and_the_bearer_scheme(client):
    document = client.get("/openapi.json").json()
    assert document["info"]["title"] == "patron"
    assert document["info"]["version"]
    paths = document["paths"]
    for path, method in [
        ("/api/v1/auth/token", "post"),
        ("/api/v1/customers", "get"),
        ("/api/v1/customers", "post"),
        ("/api/v1/customers/{customer_id}", "get"),
        ("/api/v1/customers/{customer_id}", "patch"),
        ("/api/v1/customers/{customer_id}/touchpoints", "post"),
        ("/api/v1/imports", "post"),
        ("/api/v1/imports", "get"),
        ("/api/v1/imports/{batch_id}", "get"),
        ("/api/v1/imports/{batch_id}/rejected.csv", "get"),
        ("/api/v1/scoring-runs", "post"),
        ("/api/v1/scoring-runs", "get"),
        ("/api/v1/scoring-runs/{run_id}", "get"),
        ("/api/v1/scoring-runs/{run_id}/migration", "get"),
        ("/api/v1/merges", "get"),
        ("/api/v1/exports/customers", "get"),
        ("/healthz", "get"),
    ]:
        assert method in paths.get(path, {}), (method, path)
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearer"].items()
    assert {"in": "cookie", "name": "patron_session"}.items() <= schemes["session"].items()
    token = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(token)
    # Pages are not part of the API document.
    assert not any(not p.startswith(("/api/", "/healthz")) for p in paths)


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "There is nothing at this address.",
        "field": None,
    }


def test_wrong_method_is_a_json_405_in_the_readers_language(client):
    response = client.delete("/api/v1/customers", headers={"Accept-Language": "zh-CN,en;q=0.5"})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.json()["message"] == "此地址不接受 DELETE 方法。"


def test_no_cdn_docs_pages(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_the_request_owns_the_transaction(app, engine):
    """A database refusal is a 409 in the error shape, and nothing of the request stays."""
    from sqlalchemy import func, select

    from patron.crm.tables import Customer, User
    from patron.web.deps import SessionDep

    def twice(session: SessionDep) -> dict:
        session.add(Customer(name="kept only if the request succeeds"))
        session.flush()
        session.add_all([User(username="dup", role="staff", password_hash="x") for _ in "ab"])
        session.flush()
        return {}

    app.add_api_route("/api/v1/test-twice", twice, methods=["POST"])
    with TestClient(app) as client:
        response = client.post("/api/v1/test-twice")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Customer)) == 0


def test_json_has_no_nan(app):
    app.add_api_route("/api/v1/test-nan", lambda: {"p_alive": float("nan"), "x": [float("inf")]})
    with TestClient(app) as client:
        assert client.get("/api/v1/test-nan").json() == {"p_alive": None, "x": [None]}


def test_reads_do_not_wait_for_a_writer_on_sqlite(client, users, engine, db_url):
    """On SQLite a GET begins deferred: a long import holding the write lock blocks no read."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    headers = users.headers("staff")
    assert client.get("/api/v1/customers", headers=headers).status_code == 200  # token used
    with engine.connect() as writer:
        writer.exec_driver_sql(
            "INSERT INTO customers (name, created_at, updated_at) "
            "VALUES ('pending', '2024-01-01', '2024-01-01')"
        )
        assert writer.in_transaction()  # BEGIN IMMEDIATE: the write lock is held
        assert client.get("/healthz").json()["database"] == "ok"
        response = client.get("/api/v1/customers", headers=headers)
        assert response.status_code == 200
        assert response.json()["total"] == 0  # the writer has not committed
        writer.rollback()


@pytest.mark.parametrize(
    ("threads", "environ", "expected"), [(3, None, 3), (None, "5", 5), (None, None, 8)]
)
def test_the_endpoint_threads_are_limited(tmp_path, monkeypatch, threads, environ, expected):
    # Forty threads (AnyIO's default) fight for the GIL under load; patron runs eight.
    from anyio.to_thread import current_default_thread_limiter

    monkeypatch.delenv("PATRON_THREADS", raising=False)
    if environ:
        monkeypatch.setenv("PATRON_THREADS", environ)
    app = create_app(f"sqlite:///{tmp_path / 'empty.db'}", check_schema=False, threads=threads)

    @app.get("/limit")
    async def limit() -> dict:
        return {"tokens": current_default_thread_limiter().total_tokens}

    with TestClient(app) as client:
        assert client.get("/limit").json() == {"tokens": expected}
