"""Staff members, sign-in and personal API tokens."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.admin.schemas.common import Id, Text, aware_datetime
from app.models.staff import STAFF_ROLES

PASSWORD = {"min_length": 10, "max_length": 200}


class LoginSchema(Schema):
    email = Text(required=True, min_length=3, max_length=320)
    password = Text(required=True, min_length=1, max_length=200, load_only=True)
    shop_id = Id(strict=True, load_default=None, metadata={"description": "only needed when the email is staff of several shops"})


class MeSchema(Schema):
    shop_id = fields.Integer(required=True)
    actor = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(STAFF_ROLES)})
    staff_id = fields.Integer(allow_none=True)
    email = fields.String(allow_none=True)
    via = fields.String(required=True, metadata={"enum": ["session", "token", "shopify"]})
    permissions = fields.List(fields.String(), required=True)
    csrf_token = fields.String(allow_none=True, metadata={"description": "send as X-CSRF-Token with cookie sessions"})


class StaffSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(STAFF_ROLES)})
    disabled = fields.Function(lambda s: s.disabled_at is not None, metadata={"type": "boolean"})
    last_login_at = aware_datetime(allow_none=True)
    created_at = aware_datetime()


class StaffCreateSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    name = Text(load_default="")
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    password = Text(required=True, load_only=True, **PASSWORD)


class StaffInviteSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    name = Text(load_default="")
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class StaffInvitedSchema(StaffSchema):
    invite_token = fields.String(required=True, metadata={"description": "shown once: give it to the invitee"})
    invite_expires_at = aware_datetime(required=True)


class AcceptInvitationSchema(Schema):
    token = Text(required=True, min_length=1, max_length=200, load_only=True)
    password = Text(required=True, load_only=True, **PASSWORD)


class StaffUpdateSchema(Schema):
    name = Text()
    role = fields.String(validate=validate.OneOf(STAFF_ROLES))
    disabled = fields.Boolean()
    password = Text(load_only=True, **PASSWORD)


class TokenSchema(Schema):
    id = fields.Integer(required=True)
    staff_id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    last_used_at = aware_datetime(allow_none=True)
    revoked_at = aware_datetime(allow_none=True)
    created_at = aware_datetime()


class TokenCreateSchema(Schema):
    name = Text(required=True, min_length=1, max_length=100)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "shown once; store it now"})
