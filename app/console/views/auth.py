"""Standalone sign-in and sign-out (embedded pages are signed in by App Bridge, see frame)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.admin.auth import (
    InvalidCredentials, LoginThrottled, ShopUninstalled, csrf_ok, current_staff, end_session, login, start_session,
)
from app.admin.staff_accounts import sign_out_everywhere
from app.console.frame import bp
from app.extensions import db

def _safe_next(target: str | None) -> str | None:
    """Only our own console pages: never an open redirect to another host."""
    # A control character (CR/LF) cannot go in a Location header: ignored, not a 500.
    if (target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):
        return target
    return None

@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    next_url = _safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(next_url or url_for("console.dashboard"))
        return render_template("console/login.html", page_title="Sign in", next=next_url, email="", error=None)
    email = request.form.get("email", "")
    error, status = None, 200
    if not csrf_ok():
        error, status = "The form expired. Please sign in again.", 400
    else:
        try:
            identity = login(db.session, None, email, request.form.get("password", ""))
        except LoginThrottled as exc:
            minutes = max(1, round(exc.retry_after / 60))
            error, status = (f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                             429)
        except InvalidCredentials:
            error, status = "Wrong email or password.", 401
        except ShopUninstalled as exc:
            error, status = exc.message, exc.status
        else:
            start_session(identity)
            db.session.commit()  # last_login_at (and a rehashed password)
            return redirect(next_url or url_for("console.dashboard"))
    response = render_template("console/login.html", page_title="Sign in", next=next_url, email=email, error=error)
    return response, status

@bp.post("/logout")
def logout():
    staff = current_staff()
    if staff is not None and csrf_ok():
        sign_out_everywhere(db.session, staff)
        db.session.commit()
        end_session()
    return redirect(url_for("console.login"))
