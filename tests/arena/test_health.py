"""`/api/ping/`: the load benchmark's ceiling, a request through Django and nothing else."""


def test_ping_answers_json_without_the_database(client):
    # no `db` fixture: a query would raise
    response = client.get("/api/ping/")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert client.post("/api/ping/").status_code == 405
