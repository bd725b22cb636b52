"""Creating and changing staff accounts and their API tokens (API, console pages, CLI, demo).

Every change is audited; anything that changes what a member may do (role, disabled,
password) bumps `session_version`, which ends their open sessions.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.admin.auth import (InvalidCredentials, ShopUninstalled, StaffIdentity, hash_password, hash_token,
                            new_api_token, normalize_staff_email, staff_actor, token_actor)
from app.loyalty import audit
from app.loyalty.adjustments import adjust_points, is_replay
from app.loyalty.customer_search import get_customer
from app.loyalty.errors import Forbidden, LoyaltyError, NotFound
from app.loyalty.support_limits import enforce_support_limit
from app.models import ApiToken, Shop, StaffUser, for_shop, get_for_shop

INVITE_PREFIX = "lojal_inv_"
INVITE_LIFETIME = timedelta(days=7)


def _unused_email(session: Session, shop_id: int, email: str) -> str:
    email = normalize_staff_email(email)
    # One add at a time per shop: else two at once both find the email free (a unique-key 500).
    session.execute(select(Shop.id).where(Shop.id == shop_id).with_for_update(key_share=True))
    if session.scalar(for_shop(StaffUser, shop_id).where(StaffUser.email == email)) is not None:
        raise LoyaltyError("this shop already has a staff member with that email", code="staff_exists")
    return email


def create_staff(session: Session, shop_id: int, email: str, role: str, password: str, *, actor: str,
                 name: str = "") -> StaffUser:
    email = _unused_email(session, shop_id, email)
    staff = StaffUser(shop_id=shop_id, email=email, name=name or "", role=role, password_hash=hash_password(password))
    session.add(staff)
    session.flush()
    audit.record(session, shop_id, actor, "staff.create", target_type="staff", target_id=staff.id,
                 details={"email": email, "role": role})
    return staff


def invite_staff(session: Session, shop_id: int, email: str, role: str, *, actor: str, now: datetime,
                 name: str = "") -> tuple[StaffUser, str]:
    """A member without a password yet, and the one-time token (shown once) to choose one."""
    email = _unused_email(session, shop_id, email)
    token = INVITE_PREFIX + secrets.token_urlsafe(32)
    staff = StaffUser(shop_id=shop_id, email=email, name=name or "", role=role, password_hash=None,
                      invite_token_hash=hash_token(token), invite_expires_at=now + INVITE_LIFETIME)
    session.add(staff)
    session.flush()
    audit.record(session, shop_id, actor, "staff.invite", target_type="staff", target_id=staff.id,
                 details={"email": email, "role": role})
    return staff, token


def accept_invitation(session: Session, token: str, password: str, *, now: datetime) -> StaffUser:
    """Set the invitee's password (the token is spent); an unknown, used or expired token → 401."""
    row = session.execute(select(StaffUser, Shop.status).join(Shop, Shop.id == StaffUser.shop_id)
                          .where(StaffUser.invite_token_hash == hash_token(token), StaffUser.disabled_at.is_(None))
                          .with_for_update(of=StaffUser)).one_or_none()
    staff, shop_status = row if row is not None else (None, None)
    if staff is None or staff.invite_expires_at is None or staff.invite_expires_at <= now:
        raise InvalidCredentials("this invitation is unknown, used or expired; ask for a new one")
    if shop_status == "uninstalled":
        raise ShopUninstalled()  # as a password sign-in: nothing signs in for an uninstalled shop
    staff.password_hash = hash_password(password)
    staff.invite_token_hash = staff.invite_expires_at = None
    staff.session_version += 1
    audit.record(session, staff.shop_id, staff_actor(staff), "staff.accept_invite", target_type="staff",
                 target_id=staff.id)
    return staff


def get_staff(session: Session, shop_id: int, staff_id: int, *, lock: bool = False) -> StaffUser:
    staff = get_for_shop(session, StaffUser, shop_id, staff_id, lock=lock)
    if staff is None:
        raise NotFound("no such staff member", code="staff_not_found")
    return staff


def list_staff(session: Session, shop_id: int) -> list[StaffUser]:
    return list(session.scalars(for_shop(StaffUser, shop_id).order_by(StaffUser.id)))


def update_staff(session: Session, shop_id: int, staff_id: int, changes: dict, *, actor: str,
                 now: datetime) -> StaffUser:
    """`changes`: any of name, role, disabled (bool), password."""
    # The shop's active owners are locked (in id order, before the member) so that two owners
    # demoting each other at once cannot both count the other and leave the shop without one.
    session.scalars(select(StaffUser.id).where(StaffUser.shop_id == shop_id, StaffUser.role == "owner",
                                               StaffUser.disabled_at.is_(None))
                    .order_by(StaffUser.id).with_for_update()).all()
    staff = get_staff(session, shop_id, staff_id, lock=True)
    demoted = changes.get("role", staff.role) != "owner" or changes.get("disabled", False)
    if staff.role == "owner" and staff.disabled_at is None and demoted and _active_owners(session, shop_id) <= 1:
        raise LoyaltyError("the shop's last active owner cannot be demoted or disabled", code="last_owner")
    before = {"name": staff.name, "role": staff.role, "disabled": staff.disabled_at is not None}
    ends_sessions = False
    if "name" in changes:
        staff.name = changes["name"]
    if "role" in changes and changes["role"] != staff.role:
        staff.role, ends_sessions = changes["role"], True
    if "disabled" in changes and changes["disabled"] != (staff.disabled_at is not None):
        staff.disabled_at, ends_sessions = (now if changes["disabled"] else None), True
    if changes.get("password"):
        staff.password_hash, ends_sessions = hash_password(changes["password"]), True
        # A pending invitation would otherwise reset the password just set when accepted later.
        staff.invite_token_hash = staff.invite_expires_at = None
    if ends_sessions:
        staff.session_version += 1
    audit.record(session, shop_id, actor, "staff.update", target_type="staff", target_id=staff.id,
                 details={**{k: ("(changed)" if k == "password" else v) for k, v in changes.items()},
                          "before": {k: before[k] for k in changes if k in before}})
    return staff


def sign_out_everywhere(session: Session, identity: StaffIdentity) -> None:
    """Signing out ends every session of the member. The session cookie is signed, not stored:
    without this a copy of it (another browser, a stolen cookie) stays valid until it expires.

    A Shopify merchant (signed in by App Bridge, from a cookie or an id token) has no staff row:
    the shop's console_session_version is bumped instead, ending every App Bridge cookie session
    of the shop (its other merchant users are signed in again by their next id token; the shop's
    password staff are untouched)."""
    if identity.via == "token":
        return  # an API token: no cookie session to end (revoke the token for that)
    if identity.staff_id is None:
        session.execute(update(Shop).where(Shop.id == identity.shop_id)
                        .values(console_session_version=Shop.console_session_version + 1))
        return
    staff = get_staff(session, identity.shop_id, identity.staff_id, lock=True)
    staff.session_version += 1


def _active_owners(session: Session, shop_id: int) -> int:
    return session.scalar(select(func.count()).select_from(StaffUser).where(
        StaffUser.shop_id == shop_id, StaffUser.role == "owner", StaffUser.disabled_at.is_(None)))


def create_token(session: Session, shop_id: int, staff_id: int, name: str, *, actor: str) -> tuple[ApiToken, str]:
    """A new personal API token; the plain token is returned here once and never again."""
    staff = get_staff(session, shop_id, staff_id)
    if staff.disabled_at is not None:
        raise Forbidden("a disabled staff member cannot have tokens", code="staff_disabled")
    token, token_hash, prefix = new_api_token()
    row = ApiToken(shop_id=shop_id, staff_id=staff.id, name=name.strip(), token_hash=token_hash, prefix=prefix)
    session.add(row)
    session.flush()
    audit.record(session, shop_id, actor, "api_token.create", target_type="api_token", target_id=row.id,
                 details={"name": row.name, "staff_id": staff.id, "prefix": prefix})
    return row, token


def list_tokens(session: Session, shop_id: int, staff_id: int | None = None) -> list[ApiToken]:
    stmt = for_shop(ApiToken, shop_id)
    if staff_id is not None:
        stmt = stmt.where(ApiToken.staff_id == staff_id)
    return list(session.scalars(stmt.order_by(ApiToken.id)))


def revoke_token(session: Session, shop_id: int, token_id: int, *, actor: str, now: datetime,
                 staff_id: int | None = None) -> ApiToken:
    """Revoke (idempotent). With `staff_id`, only that member's own tokens are found."""
    stmt = for_shop(ApiToken, shop_id).where(ApiToken.id == token_id)
    if staff_id is not None:
        stmt = stmt.where(ApiToken.staff_id == staff_id)  # someone else's token is not even locked
    token = session.scalars(stmt.with_for_update()).one_or_none()
    if token is None:
        raise NotFound("no such token", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(session, shop_id, actor, "api_token.revoke", target_type="api_token", target_id=token.id,
                     details={"name": token.name})
    return token


def staff_actors(session: Session, staff: StaffUser) -> list[str]:
    """Every actor string the member acts under: their own and their tokens'."""
    return [staff_actor(staff), *(token_actor(t) for t in session.scalars(
        for_shop(ApiToken, staff.shop_id).where(ApiToken.staff_id == staff.id)))]


def adjust_as(session: Session, identity: StaffIdentity, customer_id: int, points: int, *, reason: str,
              note: str | None, now: datetime, idempotency_key: str | None) -> int | None:
    """adjust_points as this staff member (API and console): support within the shop's
    per-adjustment and daily limits, owners unlimited. NotFound for another shop's customer."""
    get_customer(session, identity.shop_id, customer_id)
    # A retry of an adjustment already made is answered as a replay before the limits, which
    # that very adjustment may have used up. Checked under the agent's lock: a double submit's
    # second post waits there for the first, and only then can see it was made.
    if identity.role != "owner":
        staff = get_staff(session, identity.shop_id, identity.staff_id, lock=True)
        if not is_replay(session, identity.shop_id, idempotency_key):
            enforce_support_limit(session, identity.shop_id, staff.id, staff_actors(session, staff), points, now)
    return adjust_points(session, identity.shop_id, customer_id, points, reason=reason, actor=identity.actor,
                         note=note, now=now, idempotency_key=idempotency_key)
