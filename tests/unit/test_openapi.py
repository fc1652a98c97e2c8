"""The OpenAPI contract documents the errors the API answers (issue 9: schemathesis
checks every status against it) and the links between what is created and used."""

from __future__ import annotations

import json

import httpx

from dockyard.api.authz import OPEN_ROUTES


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
            if (method.upper(), path) in OPEN_ROUTES:
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


# Found by schemathesis (scripts/schemathesis.sh) and fixed.


async def test_audit_times_are_iso_8601_not_numbers(fake_client: httpx.AsyncClient) -> None:
    for bad in ("0.5", "1700000000", "yesterday", "2024-01-01T00:00:00"):
        resp = await fake_client.get("/audit", params={"until": bad})
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["code"] == "INVALID_FIELD"
    ok = await fake_client.get("/audit", params={"since": "2024-01-01T00:00:00+00:00"})
    assert ok.status_code == 200, ok.text


async def test_a_malformed_multipart_upload_is_400(fake_client: httpx.AsyncClient) -> None:
    made = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert made.status_code == 201, made.text
    boundary = "7c5156fb04a2177cf9e322ad31ebde44"
    resp = await fake_client.post(
        f"/containers/{made.json()['cuid']}/upload-zip",
        content=f"--{boundary}\r\nNone--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status_code == 400, resp.text
    assert (resp.json()["error"], resp.json()["code"]) == ("validation_error", "INVALID_MULTIPART")


async def test_parameters_are_strings_or_absent_never_null(fake_client: httpx.AsyncClient) -> None:
    # Schemathesis sent GET /images?tag=138 as the "not a string" side of
    # anyOf [string, null] and expected a 400 for what is a valid tag.
    doc = (await fake_client.get("/openapi.json")).json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                assert "anyOf" not in parameter["schema"], (method, path, parameter["name"])
    tag = next(p for p in doc["paths"]["/images"]["get"]["parameters"] if p["name"] == "tag")
    assert tag["schema"]["type"] == "string" and tag["schema"]["maxLength"] == 256
    resp = await fake_client.get("/images", params={"tag": "138"})
    assert resp.status_code == 200, resp.text
