"""Store: the platform connection (connect, disconnect), backfill progress, failed jobs and the
shoppers' data requests (GDPR exports)."""
from __future__ import annotations

import json

from flask import Response, abort, current_app, flash, redirect, render_template, request

from app.admin.auth import requires
from app.admin.failed_jobs import retry_shop_job, shop_failed_jobs
from app.console.frame import bp, console_url, staff_shop
from app.extensions import db
from app.loyalty import audit
from app.loyalty.data_requests import get_data_request, list_data_requests
from app.loyalty.errors import NotFound
from integrations.base import TransientPlatformError
from integrations.woocommerce.upkeep import disconnect as disconnect_woocommerce
from jobs.progress import backfill_progress

DATA_REQUESTS_SHOWN = 50
# /woocommerce/return sends the merchant here with what happened at the store's consent screen.
CONNECT_OUTCOMES = {
    "connected": ("success", "Your store is connected. Lojal is importing its order history now."),
    "declined": ("critical", "The store did not grant access. Connect again and approve the request."),
    "failed": ("critical", "The store's keys did not reach Lojal. Connect again from your store's address."),
}


@bp.get("/store")
@requires("read")
def store():
    staff, shop = staff_shop()
    app = current_app._get_current_object()
    requests_ = list_data_requests(db.session, staff.shop_id, None, DATA_REQUESTS_SHOWN).items
    outcome = CONNECT_OUTCOMES.get(request.args.get("connect", ""))
    return render_template("console/store.html", page_title="Store", backfill=backfill_progress(app, staff.shop_id),
                           failed_jobs=shop_failed_jobs(app, db.session, staff.shop_id), data_requests=requests_,
                           outcome=outcome)


@bp.post("/store/jobs/<job_id>/retry")
@requires("settings")
def store_retry_job(job_id: str):
    staff, _ = staff_shop()
    try:
        requeued = retry_shop_job(current_app._get_current_object(), db.session, staff.shop_id, job_id)
    except NotFound:
        abort(404)
    # As the admin API does: the retry is a change made by a person.
    audit.record(db.session, staff.shop_id, staff.actor, "job.retry", target_type="job", target_id=requeued)
    db.session.commit()
    flash("The job is queued again.", "success")
    return redirect(console_url("console.store"))


@bp.post("/store/disconnect")
@requires("settings")
def store_disconnect():
    staff, shop = staff_shop()
    if shop.platform != "woocommerce":
        flash("Shopify stores are disconnected by uninstalling Lojal in your Shopify admin.", "critical")
        return redirect(console_url("console.store"))
    try:
        deleted = disconnect_woocommerce(db.session, shop, actor=staff.actor)
    except TransientPlatformError as exc:
        db.session.rollback()
        flash(f"Your store did not answer ({exc}). Nothing changed; try again in a minute.", "critical")
        return redirect(console_url("console.store"))
    db.session.commit()
    flash(f"Disconnected. {deleted} webhooks were removed from your store; your customers and points are kept.",
          "success")
    return redirect(console_url("console.store"))


@bp.get("/store/data-requests/<int:request_id>.json")
@requires("read")
def data_request_download(request_id: int):
    staff, _ = staff_shop()
    try:
        row = get_data_request(db.session, staff.shop_id, request_id)
    except NotFound:
        abort(404)
    body = json.dumps(row.export, indent=2, ensure_ascii=False, default=str)
    filename = f"data-request-{row.platform_request_id}.json".replace('"', "")
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
