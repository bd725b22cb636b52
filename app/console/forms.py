"""HTML forms through marshmallow: the posted strings in, (loaded data, per-field errors) out.

Browsers post every field as a string, an empty input as "": an empty optional field is
`None` when the schema allows it and left out otherwise (so the schema's default or the
stored value stands). A checkbox posts a hidden "false" then, when ticked, "true": the last
value wins.
"""
from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields
from werkzeug.datastructures import MultiDict

Errors = dict[str, list[str]]
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")


def form_input(schema: Schema, form: MultiDict) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for field in schema.fields.values():
        name = field.data_key or field.name
        if field.dump_only or name not in form:
            continue
        values = form.getlist(name)
        if isinstance(field, fields.List):
            raw[name] = [line.strip() for value in values for line in value.splitlines() if line.strip()]
            continue
        value = values[-1].strip()
        if value == "":
            if field.allow_none:
                raw[name] = None
            continue
        raw[name] = int(value) if isinstance(field, fields.Integer) and _WHOLE.fullmatch(value) else value
    return raw


def load_form(schema: Schema, form: MultiDict, **load_kwargs) -> tuple[Any, Errors]:
    """(loaded, {}) or (None, {field: [messages]}) — errors of nested or schema-wide checks under `_form`."""
    try:
        return schema.load(form_input(schema, form), **load_kwargs), {}
    except ValidationError as err:
        return None, flatten_errors(err.messages)


def flatten_errors(messages: Any) -> Errors:
    if not isinstance(messages, dict):
        return {"_form": [str(m) for m in (messages if isinstance(messages, list) else [messages])]}
    errors: Errors = {}
    for name, value in messages.items():
        key = "_form" if name == "_schema" else str(name)
        errors.setdefault(key, []).extend(_strings(value))
    return errors


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def posted_values(form: MultiDict) -> dict[str, str]:
    """What was typed, to show again with the errors (a ticked checkbox's last value wins)."""
    return {name: form.getlist(name)[-1] for name in form}
