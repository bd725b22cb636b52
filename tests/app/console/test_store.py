"""Store: connection status, WooCommerce disconnect (owner), backfill progress, failed jobs with
retry, and the shoppers' data-request exports."""
from __future__ import annotations

import json

import pytest
import responses
from responses import matchers
from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, DataRequest, Shop
from jobs.progress import next_backfill_job_id
from jobs.queues import enqueue, queue
from tests.app.console.conftest import committed_console_shop, csrf, make_console_shop, sign_in
from tests.integrations.woocommerce.wc_support import make_wc_shop
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401 (fixtures)


def _woo_console(app):
    with app.app_context():
        made = make_console_shop(db.session, maker=make_wc_shop)
        shop = db.session.get(Shop, made.shop_id)
        db.session.commit()
        details = (made, shop.uid, shop.domain)
        db.session.remove()
    return details


def _client(app, made, role: str):
    client = app.test_client()
    sign_in(client, made.emails[role])
    return client


def test_owner_disconnects_a_woocommerce_store_and_the_audit_log_names_them(app, store):
    made, uid, domain = _woo_console(app)
    ours = f"https://lojal.test/woocommerce/webhooks/{uid}"
    store.get(f"{domain}/wp-json/wc/v3/webhooks", json=[{"id": 11, "delivery_url": ours}])
    store.delete(f"{domain}/wp-json/wc/v3/webhooks/11", json={"id": 11},
                 match=[matchers.query_param_matcher({"force": "true"})])
    client = _client(app, made, "owner")
    assert "Disconnect store" in client.get("/admin/store").get_data(as_text=True)
    response = client.post("/admin/store/disconnect", data={"csrf_token": csrf(client)}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Disconnected. 1 webhooks were removed from your store" in html
    assert "Connect WooCommerce store" in html and 'action="/woocommerce/connect"' in html
    with app.app_context():
        assert db.session.get(Shop, made.shop_id).status == "disconnected"
        row = db.session.scalars(select(AuditLog).where(AuditLog.shop_id == made.shop_id,
                                                        AuditLog.action == "shop.disconnect")).one()
        assert row.actor == f"staff:{made.staff_ids['owner']}:{made.emails['owner']}"


def test_a_store_that_does_not_answer_stays_connected(app, store):
    made, _, domain = _woo_console(app)
    store.get(f"{domain}/wp-json/wc/v3/webhooks", status=503)
    client = _client(app, made, "owner")
    html = client.post("/admin/store/disconnect", data={"csrf_token": csrf(client)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Nothing changed; try again in a minute." in html
    with app.app_context():
        assert db.session.get(Shop, made.shop_id).status == "active"


def test_support_may_not_disconnect(app, store):
    made, _, _ = _woo_console(app)
    client = _client(app, made, "support")
    assert "Disconnect store" not in client.get("/admin/store").get_data(as_text=True)
    assert client.post("/admin/store/disconnect", data={"csrf_token": csrf(client)}).status_code == 403
    assert len(store.calls) == 0


@pytest.mark.parametrize("outcome,message", [
    ("connected", "Your store is connected."), ("declined", "The store did not grant access."),
    ("failed", "keys did not reach Lojal.")])
def test_the_woocommerce_return_outcome_is_shown(signed_in, outcome, message):
    assert message in signed_in("owner").get(f"/admin/store?connect={outcome}").get_data(as_text=True)


def test_backfill_progress_is_shown(app, signed_in, console_shop):
    job_id = next_backfill_job_id(console_shop.shop_id, app=app)
    q = queue("maintenance", app)
    job = Job.create("jobs.shopify_sync.backfill_orders", args=[console_shop.shop_id], id=job_id,
                     connection=q.connection, serializer=q.serializer)
    job.meta.update({"done": 40, "total_estimate": 100, "mode": "backfill"})
    job.save()
    html = signed_in("viewer").get("/admin/store").get_data(as_text=True)
    assert "Importing: 40 of about 100 orders." in html
    assert '<progress max="100" value="40"' in html


def test_a_shops_failed_job_is_listed_and_retried_and_other_shops_jobs_are_not(worker_app, run_jobs):
    made = committed_console_shop(worker_app)
    other = committed_console_shop(worker_app)
    mine = enqueue("jobs.maintenance.release_pending", made.shop_id, queue_name="maintenance", retries=0,
                   now="not-a-time", app=worker_app)
    theirs = enqueue("jobs.maintenance.release_pending", other.shop_id, queue_name="maintenance", retries=0,
                     now="not-a-time", app=worker_app)
    run_jobs()
    client = _client(worker_app, made, "owner")
    html = client.get("/admin/store").get_data(as_text=True)
    assert f"/admin/store/jobs/{mine.id}/retry" in html and "Invalid isoformat string" in html
    assert theirs.id not in html
    assert client.post(f"/admin/store/jobs/{theirs.id}/retry", data={"csrf_token": csrf(client)}).status_code == 404
    response = client.post(f"/admin/store/jobs/{mine.id}/retry", data={"csrf_token": csrf(client)})
    assert response.status_code == 302
    mine.refresh()
    assert mine.get_status() == "queued"
    queue("maintenance", worker_app).empty()


def test_a_retried_job_is_audited_with_the_owner_as_actor(worker_app, run_jobs):
    made = committed_console_shop(worker_app)
    job = enqueue("jobs.maintenance.release_pending", made.shop_id, queue_name="maintenance", retries=0,
                  now="not-a-time", app=worker_app)
    run_jobs()
    client = _client(worker_app, made, "owner")
    assert client.post(f"/admin/store/jobs/{job.id}/retry", data={"csrf_token": csrf(client)}).status_code == 302
    queue("maintenance", worker_app).empty()
    with worker_app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.shop_id == made.shop_id,
                                                         AuditLog.action == "job.retry")).all()
        assert [(r.actor, r.target_id) for r in rows] == [(f"staff:{made.staff_ids['owner']}:{made.emails['owner']}",
                                                           job.id)]


def test_data_request_exports_are_listed_and_downloaded_only_by_their_shop(app, signed_in, console_shop):
    with app.app_context():
        mine = DataRequest(shop_id=console_shop.shop_id, platform_request_id="req-77", export={"customers": [
            {"email": "ada@example.com"}]})
        other_shop = committed_console_shop(app)
        theirs = DataRequest(shop_id=other_shop.shop_id, platform_request_id="req-78", export={})
        db.session.add_all([mine, theirs])
        db.session.commit()
        mine_id, theirs_id = mine.id, theirs.id
    client = signed_in("owner")
    assert "req-77" in client.get("/admin/store").get_data(as_text=True)
    download = client.get(f"/admin/store/data-requests/{mine_id}.json")
    assert download.headers["Content-Disposition"] == 'attachment; filename="data-request-req-77.json"'
    assert json.loads(download.get_data(as_text=True)) == {"customers": [{"email": "ada@example.com"}]}
    assert client.get(f"/admin/store/data-requests/{theirs_id}.json").status_code == 404


def test_an_empty_store_page_explains_each_section(app):
    html = _client(app, committed_console_shop(app), "viewer").get("/admin/store").get_data(as_text=True)
    assert "No failed jobs." in html and "No data requests." in html
