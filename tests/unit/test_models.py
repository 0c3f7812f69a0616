async def test_models_lists_the_served_base_model(client):
    r = await client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["parent"]) for m in body["data"]] == [("demo", "model", None)]
