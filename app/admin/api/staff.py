"""Staff management (owner) and personal API tokens (each member their own; owners all)."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from marshmallow import Schema, fields

from app.admin.api.registry import commit, operation
from app.admin.schemas.staff import (StaffCreateSchema, StaffInvitedSchema, StaffInviteSchema, StaffSchema,
                                     StaffUpdateSchema, TokenCreatedSchema, TokenCreateSchema, TokenSchema)
from app.admin.staff_accounts import (create_staff, create_token, invite_staff, list_staff, list_tokens, revoke_token,
                                      update_staff)
from app.extensions import db
from app.loyalty.errors import Forbidden

StaffListSchema = Schema.from_dict({"items": fields.List(fields.Nested(StaffSchema), required=True)}, name="StaffList")
TokenListSchema = Schema.from_dict({"items": fields.List(fields.Nested(TokenSchema), required=True)}, name="TokenList")


@operation("/staff", "GET", tag="staff", summary="The shop's staff", permission="staff", response=StaffListSchema())
def list_staff_view(identity):
    return {"items": list_staff(db.session, identity.shop_id)}


@operation("/staff", "POST", tag="staff", summary="Add a staff member with a password", permission="staff",
           body=StaffCreateSchema(), response=StaffSchema(), status=201)
def create_staff_view(identity, body):
    identity.refuse_if_token()
    staff = create_staff(db.session, identity.shop_id, body["email"], body["role"], body["password"],
                         actor=identity.actor, name=body["name"])
    commit()
    return staff


@operation("/staff/invitations", "POST", tag="staff", permission="staff", body=StaffInviteSchema(),
           response=StaffInvitedSchema(), status=201,
           summary="Invite a staff member: they choose their password with the one-time token (7 days)")
def invite_staff_view(identity, body):
    identity.refuse_if_token()
    staff, token = invite_staff(db.session, identity.shop_id, body["email"], body["role"], actor=identity.actor,
                                now=datetime.now(UTC), name=body["name"])
    commit()
    fields_ = ("id", "email", "name", "role", "disabled_at", "last_login_at", "created_at", "invite_expires_at")
    return SimpleNamespace(**{name: getattr(staff, name) for name in fields_}, invite_token=token)


@operation("/staff/<int:staff_id>", "PATCH", tag="staff",
           summary="Change name, role, password or disable (role, password and disable end their sessions)",
           permission="staff", body=StaffUpdateSchema(), response=StaffSchema())
def update_staff_view(identity, staff_id, body):
    if "password" in body:
        identity.refuse_if_token()
    staff = update_staff(db.session, identity.shop_id, staff_id, body, actor=identity.actor, now=datetime.now(UTC))
    commit()
    return staff


def _own_tokens_only(identity) -> int | None:
    """Owners manage every token of the shop; everyone else only their own."""
    return None if identity.role == "owner" else identity.staff_id


@operation("/tokens", "GET", tag="tokens", summary="Personal API tokens (never the token itself)",
           response=TokenListSchema())
def list_tokens_view(identity):
    if identity.staff_id is None and identity.role != "owner":
        return {"items": []}
    return {"items": list_tokens(db.session, identity.shop_id, _own_tokens_only(identity))}


@operation("/tokens", "POST", tag="tokens", summary="Create a personal API token for yourself; shown once",
           body=TokenCreateSchema(), response=TokenCreatedSchema(), status=201)
def create_token_view(identity, body):
    identity.refuse_if_token()
    if identity.staff_id is None:
        raise Forbidden("tokens are created by a signed-in staff member, not by a Shopify session",
                        code="token_creation_refused")
    row, token = create_token(db.session, identity.shop_id, identity.staff_id, body["name"], actor=identity.actor)
    commit()
    return {**{c: getattr(row, c) for c in ("id", "staff_id", "name", "prefix", "last_used_at", "revoked_at",
                                            "created_at")}, "token": token}


@operation("/tokens/<int:token_id>", "DELETE", tag="tokens", summary="Revoke a token (at once, for good)")
def revoke_token_view(identity, token_id):
    revoke_token(db.session, identity.shop_id, token_id, actor=identity.actor, now=datetime.now(UTC),
                 staff_id=_own_tokens_only(identity))
    commit()
