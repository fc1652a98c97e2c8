"""The OpenAPI contract documents the errors the API answers (issue 9: schemathesis
checks every status against it) and the links between what is created and used."""

from __future__ import annotations

import json

import httpx


async def test_errors_are_documented_with_the_error_body(fake_client: httpx.AsyncClient) -> None:
    doc = (await fake_client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(doc)
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {
        "error", "code", "message", "status", "request_id", "timestamp", "details"
    }  # fmt: skip
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {code for code in responses if code[0] in "45"}
            assert {"500", "503"} <= errors, (method, path)
            for code in errors:
                schema = responses[code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            if (method, path) == ("get", "/livez"):
                assert operation["security"] == [] and "401" not in responses
            else:
                assert {"401", "403"} <= errors, (method, path)
    create = doc["paths"]["/containers"]["post"]["responses"]
    assert {"400", "413", "415", "409", "422", "507"} <= set(create)
    assert "404" in doc["paths"]["/containers/{cuid}"]["get"]["responses"]


async def test_a_refusal_has_exactly_the_documented_fields(fake_client: httpx.AsyncClient) -> None:
    doc = (await fake_client.get("/openapi.json")).json()
    error = doc["components"]["schemas"]["Error"]
    resp = await fake_client.post("/containers", json={"image": 1})
    assert resp.status_code == 400
    assert set(error["required"]) <= set(resp.json()) <= set(error["properties"])


async def test_creates_link_to_what_uses_their_result(fake_client: httpx.AsyncClient) -> None:
    doc = (await fake_client.get("/openapi.json")).json()
    links = doc["paths"]["/containers"]["post"]["responses"]["201"]["links"]
    get_one = doc["paths"]["/containers/{cuid}"]["get"]["operationId"]
    assert links[get_one]["parameters"] == {"cuid": "$response.body#/cuid"}
    key_links = doc["paths"]["/servicekeys"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["key_id"] for link in key_links.values()} == {"$response.body#/id"}
