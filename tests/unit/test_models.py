async def test_models_lists_the_served_base_model(client):
    r = await client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["parent"]) for m in body["data"]] == [("demo", "model", None)]


async def test_a_model_is_retrieved_by_id_and_an_unknown_one_is_404(client):
    r = await client.get("/v1/models/demo")
    assert r.status_code == 200
    assert {k: v for k, v in r.json().items() if k != "created"} == {
        "id": "demo", "object": "model", "owned_by": "deliberate", "root": "demo",
        "parent": None}
    r = await client.get("/v1/models/nope")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": "The model `nope` does not exist. Available models: demo",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
