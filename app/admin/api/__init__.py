"""The admin JSON API, /api/admin/v1: one module per resource family, declared through
app.admin.api.registry.operation, and its OpenAPI document at /api/admin/v1/openapi.json."""
from __future__ import annotations

from flask import jsonify

from app.admin.api import (analytics, catalog, customers, jobs, program, records, redemptions,  # noqa: F401
                           session, staff)
from app.admin.api.openapi import openapi_document
from app.admin.api.registry import bp


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


__all__ = ["bp"]
