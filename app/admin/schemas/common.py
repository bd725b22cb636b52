"""Fields and schemas every resource uses: safe text, opaque cursors, pages, the error envelope."""
from __future__ import annotations

import base64
import binascii
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate

MAX_ID = 2**63 - 1  # PostgreSQL bigint


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")


class Text(fields.String):
    """A string PostgreSQL can store (no NUL), bounded in length."""

    def __init__(self, *, max_length: int = 255, min_length: int = 0, **kwargs):
        validators = [validate.Length(min=min_length, max=max_length), _no_nul]
        super().__init__(validate=validators + list(kwargs.pop("validate", [])), **kwargs)


class Id(fields.Integer):
    """A row id. Query strings carry text, so only JSON bodies ask for `strict=True`."""

    def __init__(self, *, strict: bool = False, **kwargs):
        super().__init__(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Cursor(fields.String):
    """Opaque outside (base64url), the last id seen inside. A tampered cursor is a 422."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return base64.urlsafe_b64encode(f"id:{value}".encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            prefix, _, number = decoded.partition(":")
            cursor = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationError("not a cursor this API gave out") from None
        if prefix != "id" or not 1 <= cursor <= MAX_ID:
            raise ValidationError("not a cursor this API gave out")
        return cursor


def aware_datetime(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class PageQuerySchema(Schema):
    cursor = Cursor(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """{"items": [...], "next_cursor": str | null} for one item schema."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": Cursor(allow_none=True, required=True),
    }, name=name)


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "per-field messages (422)"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class ReasonSchema(Schema):
    reason = Text(required=True, min_length=1, max_length=500)


def _places(places: int):
    def check(value) -> None:
        if value.as_tuple().exponent < -places:
            raise ValidationError(f"at most {places} decimal places")
    return check


def _bounded(minimum: int | None, maximum: int | None, exclusive_minimum: bool):
    def check(value) -> None:
        low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
        if not low_ok or (maximum is not None and value > maximum):
            low = "" if minimum is None else f"{'more than' if exclusive_minimum else 'at least'} {minimum}"
            high = "" if maximum is None else f"at most {maximum}"
            raise ValidationError(f"must be {' and '.join(x for x in (low, high) if x)}")
    return check


class Money(fields.Decimal):
    """A decimal amount, a string on the wire (never a float). Bounds are whole numbers (JSON
    numbers in the document); more decimal places than the column keeps are refused, not rounded."""

    def __init__(self, *, minimum: int | None = 0, maximum: int | None = 10**9, exclusive_minimum: bool = False,
                 places: int = 4, **kwargs):
        metadata = {"type": "string", "format": "decimal", "example": "10.00", **kwargs.pop("metadata", {})}
        validators = [_places(places)]
        if minimum is not None or maximum is not None:
            # A plain function, not validate.Range: apispec would publish Range's bounds on a string.
            validators.append(_bounded(minimum, maximum, exclusive_minimum))
        super().__init__(as_string=True, allow_nan=False, metadata=metadata, validate=validators, **kwargs)
