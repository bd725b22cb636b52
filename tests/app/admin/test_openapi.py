"""The OpenAPI document: valid OpenAPI 3 (schemathesis' own meta-schema check), every admin
route documented with its security, its errors in the JSON envelope, built from the schemas."""
from __future__ import annotations

import schemathesis

from tests.app.admin.conftest import API


def _document(client) -> dict:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_the_document_is_valid_openapi_3(app):
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    schema.validate()  # raises on any violation of the OpenAPI 3.0 meta-schema
    assert schema.raw_schema["openapi"] == "3.0.3"


def test_every_admin_route_is_documented_and_nothing_else(app, client):
    documented = {(method.upper(), path) for path, ops in _document(client)["paths"].items() for method in ops}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API) and rule.rule != f"{API}/openapi.json":
            path = rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
            routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes and len(routes) >= 38


def test_security_schemes_and_per_operation_security(client):
    document = _document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": "lojal_pat_… personal token, or an App Bridge session token"}
    assert schemes["cookie"] == {"type": "apiKey", "in": "cookie", "name": "lojal_session"}
    assert document["paths"][f"{API}/session"]["post"]["security"] == []
    assert document["paths"][f"{API}/customers"]["get"]["security"] == [{"bearer": []}, {"cookie": []}]


def test_errors_are_documented_as_the_json_envelope(client):
    document = _document(client)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "fields"} and body["required"] == ["code", "message"]
    adjust = document["paths"][f"{API}/customers/{{customer_id}}/adjustments"]["post"]
    assert {"201", "401", "403", "404", "409", "422", "default"} <= set(adjust["responses"])
    assert adjust["responses"]["403"] == {"$ref": "#/components/responses/Error403"}


def test_request_and_response_bodies_come_from_the_marshmallow_schemas(client):
    document = _document(client)
    adjustment = document["components"]["schemas"]["Adjustment"]
    assert adjustment["properties"]["reason"]["enum"] == ["goodwill", "service_recovery", "missing_points",
                                                          "correction", "promotion", "other"]
    assert adjustment["properties"]["points"]["maximum"] == 1_000_000
    settings = document["components"]["schemas"]["ProgramSettings"]
    assert settings["properties"]["pending_days"] == {"type": "integer", "minimum": 0, "maximum": 365}
    series = document["paths"][f"{API}/analytics/series"]["get"]["responses"]["200"]["content"]
    assert set(series) == {"application/json", "text/csv"}
