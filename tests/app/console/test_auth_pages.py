"""Sign-in, sign-out and who reaches which page: anonymous → sign-in, roles → 403 pages."""
from __future__ import annotations

import pytest

from tests.app.console.conftest import PASSWORD, committed_console_shop, csrf, csrf_from, sign_in

PAGES = ["/admin/", "/admin/customers", "/admin/audit", "/admin/campaigns", "/admin/store", "/admin/settings",
         "/admin/staff", "/admin/analytics.csv", "/admin/settings/rewards/new"]
OWNER_ONLY = ["/admin/settings", "/admin/staff", "/admin/settings/rewards/new", "/admin/settings/tiers/new"]


def test_sign_in_page_has_labelled_fields_and_a_csrf_token(client):
    html = client.get("/admin/login").get_data(as_text=True)
    assert '<label for="f-email">Email</label>' in html and 'id="f-email"' in html
    assert '<label for="f-password">Password</label>' in html
    assert csrf_from(html)


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitor_is_sent_to_sign_in_with_the_page_to_return_to(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")
    assert path.rstrip("/").replace("/", "%2F") in response.headers["Location"]


def test_signing_in_lands_on_the_page_asked_for(app, console_shop):
    client = app.test_client()
    client.get("/admin/customers")
    page = client.get("/admin/login?next=/admin/customers")
    response = client.post("/admin/login?next=/admin/customers", data={
        "email": console_shop.emails["support"], "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/customers"
    assert client.get("/admin/customers").status_code == 200


def test_next_pointing_off_site_is_ignored(app, console_shop):
    client = app.test_client()
    page = client.get("/admin/login")
    response = client.post("/admin/login?next=//evil.example/admin", data={
        "email": console_shop.emails["owner"], "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/admin/"


def test_next_with_a_line_break_is_ignored_not_a_500(app, console_shop):
    # A crafted sign-in link: werkzeug refuses a Location header holding CR/LF (ValueError, a 500)
    # after the sign-in has already been committed; the target must be dropped like an off-site one.
    client = app.test_client()
    page = client.get("/admin/login")
    response = client.post("/admin/login?next=/admin/%0d%0aX-Injected:%201", data={
        "email": console_shop.emails["owner"], "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    again = client.get("/admin/login?next=/admin/%0aX")  # already signed in: the GET redirects too
    assert again.status_code == 302 and again.headers["Location"] == "/admin/"


def test_wrong_password_is_announced_and_signs_nobody_in(app, console_shop):
    client = app.test_client()
    response = sign_in(client, console_shop.emails["owner"], "not the password")
    html = response.get_data(as_text=True)
    assert response.status_code == 401
    assert 'role="alert"' in html and "Wrong email or password." in html
    assert 'aria-describedby="login-error" aria-invalid="true"' in html
    assert client.get("/admin/").status_code == 302


def test_sign_in_without_the_csrf_token_is_refused(app, console_shop):
    client = app.test_client()
    client.get("/admin/login")
    response = client.post("/admin/login", data={"email": console_shop.emails["owner"], "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_a_csrf_field_with_non_ascii_characters_is_the_expired_form_message(app, console_shop):
    client = app.test_client()
    client.get("/admin/login")
    response = client.post("/admin/login", data={"email": console_shop.emails["owner"], "password": PASSWORD,
                                                 "csrf_token": "\u00e9t\u00e9"})
    assert response.status_code == 400 and "The form expired" in response.get_data(as_text=True)


def test_an_email_with_a_nul_character_is_a_wrong_sign_in_not_a_database_error(app, console_shop):
    client = app.test_client()
    response = sign_in(client, console_shop.emails["owner"] + "\x00")
    assert response.status_code == 401 and "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_repeated_failures_show_the_throttling_message(app):
    console_shop = committed_console_shop(app)  # its viewer stays throttled
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, console_shop.emails["viewer"], "wrong").status_code == 401
    response = sign_in(client, console_shop.emails["viewer"], PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in response.get_data(as_text=True)


def test_sign_out_needs_a_post_with_the_csrf_token(signed_in):
    client = signed_in("owner")
    assert client.get("/admin/logout").status_code == 405
    client.post("/admin/logout", data={})
    assert client.get("/admin/").status_code == 200  # no token: still signed in
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("role", ["support", "viewer"])
@pytest.mark.parametrize("path", OWNER_ONLY)
def test_support_and_viewer_get_a_403_page_on_owner_pages(signed_in, role, path):
    response = signed_in(role).get(path)
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert f"Your role ({role}) may not do this." in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_owner_opens_every_page(signed_in, path):
    assert signed_in("owner").get(path).status_code == 200


def test_navigation_shows_only_what_the_role_may_open(signed_in):
    owner = signed_in("owner").get("/admin/customers").get_data(as_text=True)
    support = signed_in("support").get("/admin/customers").get_data(as_text=True)
    assert ">Program</a>" in owner and ">Staff</a>" in owner
    assert ">Program</a>" not in support and ">Staff</a>" not in support
    assert '<a href="/admin/customers" aria-current="page">Customers</a>' in support


def test_every_page_has_a_skip_link_to_the_main_region(signed_in):
    html = signed_in("viewer").get("/admin/audit").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">Skip to content</a>' in html and '<main id="main"' in html



# Each console POST and the permission it needs; the guard answers before any id is looked up.
WRITES = [
    ("/admin/settings", "settings"), ("/admin/campaigns", "settings"), ("/admin/settings/rewards/new", "settings"),
    ("/admin/settings/tiers/1", "settings"), ("/admin/settings/earn-rules/1/delete", "settings"),
    ("/admin/staff", "staff"), ("/admin/staff/1/disable", "staff"), ("/admin/staff/1/enable", "staff"),
    ("/admin/staff/tokens", "staff"), ("/admin/staff/tokens/1/revoke", "staff"),
    ("/admin/store/jobs/x/retry", "settings"), ("/admin/store/disconnect", "settings"),
    ("/admin/customers/1/adjust", "adjust"), ("/admin/customers/1/redemptions/1/resend", "adjust"),
    ("/admin/customers/1/redemptions/1/cancel", "cancel"),
]
_ROLE_PERMISSIONS = {"support": {"read", "adjust"}, "viewer": {"read"}}  # as app.admin.auth says (checked below)
REFUSED = [(role, path) for role, perms in _ROLE_PERMISSIONS.items() for path, needs in WRITES if needs not in perms]


def test_the_write_matrix_names_every_console_post_route_and_the_real_role_permissions(app):
    import re

    from app.admin.auth import ROLE_PERMISSIONS

    assert {role: set(ROLE_PERMISSIONS[role]) for role in _ROLE_PERMISSIONS} == _ROLE_PERMISSIONS
    shape = {re.sub(r"<[^>]+>", "<>", rule.rule) for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/admin/") and "POST" in rule.methods
             and rule.endpoint not in ("console.login", "console.logout")}
    listed = {re.sub(r"/(1|x|rewards|tiers|earn-rules)(?=/|$)", "/<>", path) for path, _ in WRITES}
    assert shape == listed


@pytest.mark.parametrize("role,path", REFUSED)
def test_a_role_without_the_permission_cannot_post_and_nothing_is_recorded(app, signed_in, console_shop, role, path):
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import AuditLog

    def audit_rows() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(AuditLog)
                                     .where(AuditLog.shop_id == console_shop.shop_id))

    client = signed_in(role)
    before = audit_rows()
    response = client.post(path, data={"csrf_token": csrf(client), "name": "x", "points": "5", "reason": "goodwill"})
    assert response.status_code == 403, path
    assert audit_rows() == before


@pytest.mark.parametrize("path", [path for path, _ in WRITES])
def test_an_anonymous_post_is_sent_to_sign_in(client, path):
    response = client.post(path, data={})
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
