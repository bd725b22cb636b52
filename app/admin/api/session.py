"""Signing in and out with email + password (a signed session cookie), and who am I."""
from __future__ import annotations

from datetime import UTC, datetime

from app.admin.api.registry import commit, operation
from app.admin.auth import ROLE_PERMISSIONS, csrf_token, end_session, login, staff_identity, start_session
from app.admin.schemas.staff import AcceptInvitationSchema, LoginSchema, MeSchema
from app.admin.staff_accounts import accept_invitation, sign_out_everywhere
from app.extensions import db


def _me(identity) -> dict:
    return {**identity.__dict__, "permissions": sorted(ROLE_PERMISSIONS[identity.role]),
            "csrf_token": csrf_token() if identity.via == "session" else None}


@operation("/session", "POST", tag="session", permission=None, body=LoginSchema(), response=MeSchema(),
           summary="Sign in (sets the session cookie; 5 failures per 15 min per email and address → 429)")
def sign_in(_, body):
    identity = login(db.session, body["shop_id"], body["email"], body["password"])
    commit()  # last_login_at (and a rehashed password)
    start_session(identity)
    return _me(identity)


@operation("/session/invitation", "POST", tag="session", permission=None, body=AcceptInvitationSchema(),
           response=MeSchema(), summary="Accept an invitation: choose a password and sign in")
def accept_invitation_view(_, body):
    staff = accept_invitation(db.session, body["token"], body["password"], now=datetime.now(UTC))
    commit()
    identity = staff_identity(staff)
    start_session(identity)
    return _me(identity)


@operation("/session", "DELETE", tag="session",
           summary="Sign out: ends the member's cookie sessions, here and in every other browser")
def sign_out(identity):
    sign_out_everywhere(db.session, identity)
    commit()
    end_session()


@operation("/me", "GET", tag="session", summary="The caller: shop, role, permissions and the CSRF token",
           response=MeSchema())
def me(identity):
    return _me(identity)
