"""One decorator declares an admin API operation: the Flask route (guarded by `requires`, input
parsed by marshmallow, output dumped by its schema) and its OpenAPI entry, from the same schemas."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import NotFound, UnsupportedMediaType

from app.admin.auth import current_staff, requires
from app.admin.schemas.common import MAX_ID

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin/v1")


@dataclass(frozen=True)
class Operation:
    rule: str
    method: str
    view_name: str
    summary: str
    tag: str
    permission: str | None
    body: Schema | None
    query: Schema | None
    response: Schema | None
    status: int
    content_type: str = "application/json"
    alternatives: dict[str, Any] = field(default_factory=dict)  # extra content types of the success response


OPERATIONS: list[Operation] = []
_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def operation(rule: str, method: str, *, tag: str, summary: str, permission: str | None = "read",
              body: Schema | None = None, query: Schema | None = None, response: Schema | None = None,
              status: int = 200, content_type: str = "application/json", alternatives: dict | None = None):
    """Register `view(identity, **path_args, [body=...], [query=...])` as an operation.

    The view returns what `response` dumps (None → 204) or a ready Response (CSV, downloads).
    `permission=None` makes it public (sign-in, the document itself).
    """
    def decorator(view):
        def handler(**path_args):
            for value in path_args.values():
                if isinstance(value, int) and not 1 <= value <= MAX_ID:
                    raise NotFound()  # beyond a bigint: no such row, not a database error
            kwargs = {}
            if query is not None:
                kwargs["query"] = query.load(request.args.to_dict())
            if body is not None:
                if permission is None and not request.is_json:
                    # Sign-in has no CSRF token to check: a JSON content type is what a cross-site
                    # HTML form cannot send, so it cannot sign a browser in to another account.
                    raise UnsupportedMediaType("Send the body as application/json.")
                kwargs["body"] = body.load(_json_object())
            result = view(current_staff(), **path_args, **kwargs)
            if isinstance(result, Response):
                return result
            if response is None:
                return Response(status=204)
            return jsonify(response.dump(result)), status

        handler.__name__ = view.__name__
        guarded = handler if permission is None else requires(permission)(handler)
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[method])
        OPERATIONS.append(Operation(rule, method.lower(), view.__name__, summary, tag, permission, body, query,
                                    response, status, content_type, alternatives or {}))
        return view
    return decorator


def _json_object() -> dict:
    data = request.get_json(force=True, silent=False) if request.content_length else None
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["the body must be a JSON object"]})
    return data


def openapi_path(rule: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{%s}" % m.group(2), rule)


def path_parameters(rule: str) -> list[dict]:
    params = []
    for converter, name in _PATH_PARAM.findall(rule):
        schema = ({"type": "integer", "minimum": 1, "maximum": MAX_ID} if converter == "int"
                  else {"type": "string", "minLength": 1, "maxLength": 200})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return params


def commit(intents: list | None = None) -> None:
    """The request's one commit; the domain's intents become jobs only after it."""
    from app.extensions import db
    from jobs.dispatch import dispatch

    db.session.commit()
    if intents:
        dispatch(intents)
