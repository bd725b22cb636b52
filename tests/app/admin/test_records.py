"""The audit log, GDPR data-request exports and failed jobs, each scoped to the caller's shop."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.models import AuditLog, DataRequest, Shop
from jobs.queues import enqueue
from tests.app.admin.conftest import API, bearer, cookie_login
from tests.factories import STAFF_PASSWORD, make_api_token, make_customer, make_shop, make_staff
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401 (fixtures)


def test_audit_log_filters_by_actor_customer_and_time(client, session, shop_a, customer_a):
    old = AuditLog(shop_id=shop_a.shop.id, actor="staff:1:a@x", action="points.adjust", customer_id=customer_a.id,
                   created_at=datetime.now(UTC) - timedelta(days=10))
    other = AuditLog(shop_id=shop_a.shop.id, actor="staff:2:b@x", action="settings.update")
    session.add_all([old, other])
    session.commit()
    headers = shop_a.headers["viewer"]

    def ids(**query):
        return [r["id"] for r in client.get(f"{API}/audit-log", query_string=query, headers=headers).get_json()["items"]]

    assert ids(actor="staff:2:b@x") == [other.id]
    assert ids(customer_id=customer_a.id) == [old.id]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert old.id not in ids(since=since) and other.id in ids(since=since)
    assert ids(until=since, customer_id=customer_a.id) == [old.id]
    assert client.get(f"{API}/audit-log", query_string={"since": "yesterday"}, headers=headers).status_code == 422


def test_the_audit_log_is_searched_by_a_members_full_actor_longer_than_its_column(client, session, shop_a,
                                                                                    customer_a):
    email = "a" * 250 + "@x.example"
    member = make_staff(session, shop_a.shop, "support", email=email)
    session.commit()
    me = cookie_login(client, email, STAFF_PASSWORD)
    made = client.post(f"{API}/customers/{customer_a.id}/adjustments", base_url="https://lojal.test",
                       headers={"X-CSRF-Token": me["csrf_token"]}, json={"points": 5, "reason": "goodwill"})
    assert made.status_code == 201, made.get_json()
    full = f"staff:{member.id}:{email}"
    response = client.get(f"{API}/audit-log", query_string={"actor": full}, headers=shop_a.headers["viewer"])
    assert response.status_code == 200, response.get_json()
    assert [(r["action"], r["actor"]) for r in response.get_json()["items"]] == [("points.adjust", me["actor"])]


def test_data_request_exports_are_listed_and_downloaded_as_json(client, session, shop_a, shop_b, customer_a):
    row = DataRequest(shop_id=shop_a.shop.id, platform_request_id="dr-1", customer_id=customer_a.id,
                      export={"customer": {"email": customer_a.email}}, requested_at=datetime.now(UTC))
    session.add(row)
    session.commit()
    listed = client.get(f"{API}/data-requests", headers=shop_a.headers["viewer"]).get_json()["items"]
    assert [(r["id"], r["platform_request_id"]) for r in listed] == [(row.id, "dr-1")] and "export" not in listed[0]
    download = client.get(f"{API}/data-requests/{row.id}", headers=shop_a.headers["viewer"])
    assert download.headers["Content-Disposition"] == f'attachment; filename="data-request-{row.id}.json"'
    assert download.get_json()["export"] == {"customer": {"email": customer_a.email}}
    foreign = client.get(f"{API}/data-requests/{row.id}", headers=shop_b.headers["owner"])
    assert foreign.status_code == 404 and customer_a.email not in foreign.get_data(as_text=True)
    assert client.get(f"{API}/data-requests", headers=shop_b.headers["owner"]).get_json()["items"] == []


def test_owner_lists_and_retries_only_their_shops_failed_jobs(worker_app, wsession, run_jobs):  # noqa: F811
    mine, theirs = make_shop(wsession, timezone="Nowhere/Atlantis"), make_shop(wsession, timezone="Nowhere/Atlantis")
    headers = {}
    for shop in (mine, theirs):
        headers[shop.id] = bearer(make_api_token(wsession, make_staff(wsession, shop, "owner")))
    viewer = bearer(make_api_token(wsession, make_staff(wsession, mine, "viewer")))
    wsession.commit()
    jobs = {shop.id: enqueue("jobs.maintenance.birthdays", shop.id, queue_name="maintenance", retries=0,
                             now="2026-03-10T12:00:00+00:00", app=worker_app) for shop in (mine, theirs)}
    run_jobs()
    client = worker_app.test_client()
    listed = client.get(f"{API}/failed-jobs", headers=headers[mine.id]).get_json()["items"]
    assert [(j["id"], j["function"], j["queue"]) for j in listed] == [
        (jobs[mine.id].id, "jobs.maintenance.birthdays", "maintenance")]
    assert "Nowhere/Atlantis" in listed[0]["error"]
    assert client.get(f"{API}/failed-jobs", headers=viewer).status_code == 403
    assert client.post(f"{API}/failed-jobs/{jobs[theirs.id].id}/retry", headers=headers[mine.id]).status_code == 404

    wsession.get(Shop, mine.id).timezone = "Europe/Oslo"  # the cause is fixed
    wsession.commit()
    retried = client.post(f"{API}/failed-jobs/{jobs[mine.id].id}/retry", headers=headers[mine.id])
    assert retried.status_code == 202 and retried.get_json() == {"requeued": [jobs[mine.id].id]}
    run_jobs()
    assert client.get(f"{API}/failed-jobs", headers=headers[mine.id]).get_json()["items"] == []
    assert [j["id"] for j in client.get(f"{API}/failed-jobs", headers=headers[theirs.id]).get_json()["items"]] == [
        jobs[theirs.id].id]
    wsession.get(Shop, theirs.id).timezone = "UTC"  # leave no broken shop for jobs that visit every shop
    wsession.commit()


def test_a_failed_inbox_job_belongs_to_the_shop_of_its_webhook_event(worker_app, wsession, run_jobs):  # noqa: F811
    from app.models import WebhookEvent

    shop = make_shop(wsession)
    other = make_shop(wsession)
    owner = {s.id: bearer(make_api_token(wsession, make_staff(wsession, s, "owner"))) for s in (shop, other)}
    event = WebhookEvent(shop_id=shop.id, platform="nowhere", topic="orders/paid", event_key="e1", payload={})
    wsession.add(event)
    wsession.commit()
    try:
        job = enqueue("jobs.inbox.process_webhook_event", event.id, queue_name="webhooks", retries=0, app=worker_app)
        run_jobs()
        client = worker_app.test_client()
        assert [j["id"] for j in client.get(f"{API}/failed-jobs", headers=owner[shop.id]).get_json()["items"]] == [
            job.id]
        assert client.get(f"{API}/failed-jobs", headers=owner[other.id]).get_json()["items"] == []
    finally:
        # The inbox sweeper reads every shop's unprocessed rows: leave none behind for other tests.
        wsession.rollback()
        wsession.get(WebhookEvent, event.id).processed_at = datetime.now(UTC)
        wsession.commit()


def test_analytics_summary_series_and_csv(client, session, shop_a, customer_a):
    headers = shop_a.headers["viewer"]
    period = {"start": "2026-03-01", "end": "2026-03-07"}
    summary = client.get(f"{API}/analytics/summary", query_string=period, headers=headers)
    assert summary.status_code == 200 and summary.get_json()["start"] == "2026-03-01"
    assert "members" in summary.get_json()["metrics"]
    series = client.get(f"{API}/analytics/series", query_string=period, headers=headers).get_json()
    assert [d["date"] for d in series["days"]][0] == "2026-03-01" and len(series["days"]) == 7
    csv = client.get(f"{API}/analytics/series", query_string={**period, "format": "csv"}, headers=headers)
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).splitlines()[0].startswith("date,")
    assert len(csv.get_data(as_text=True).strip().splitlines()) == 8
    backwards = client.get(f"{API}/analytics/summary", query_string={"start": "2026-03-07", "end": "2026-03-01"},
                           headers=headers)
    assert backwards.status_code == 422
    too_long = client.get(f"{API}/analytics/series", query_string={"start": "2024-01-01", "end": "2026-01-01"},
                          headers=headers)
    assert too_long.status_code == 422


def test_analytics_of_shop_b_do_not_count_shop_a_customers(client, session, shop_a, shop_b, customer_a):
    from tests.factories import give_points

    give_points(session, customer_a, 100)
    make_customer(session, shop_b.shop)
    session.commit()
    today = datetime.now(UTC).date().isoformat()
    period = {"start": today, "end": today}
    a = client.get(f"{API}/analytics/summary", query_string=period, headers=shop_a.headers["viewer"]).get_json()
    b = client.get(f"{API}/analytics/summary", query_string=period, headers=shop_b.headers["viewer"]).get_json()
    assert a["metrics"]["points_issued"] + a["metrics"].get("points_adjusted", 0) >= 100
    assert b["metrics"].get("points_adjusted", 0) == 0 and b["metrics"]["members"] == 0


def test_without_redis_the_owners_retry_runs_the_failed_job_at_once():
    # In-process mode has no worker to take a requeued job from its queue.
    from app import create_app
    from tests.conftest import app_session, test_config

    app = create_app(test_config(REDIS_URL="", RUN_JOBS_IN_PROCESS=True))
    with app_session(app) as session:
        shop = make_shop(session, timezone="Nowhere/Atlantis")
        headers = bearer(make_api_token(session, make_staff(session, shop, "owner")))
        session.commit()
        job = enqueue("jobs.maintenance.birthdays", shop.id, queue_name="maintenance",
                      now="2026-03-10T12:00:00+00:00", app=app)
        session.get(Shop, shop.id).timezone = "Europe/Oslo"  # the cause is fixed
        session.commit()
    client = app.test_client()
    retried = client.post(f"{API}/failed-jobs/{job.id}/retry", headers=headers)
    assert retried.status_code == 202 and retried.get_json() == {"requeued": [job.id]}
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == "noop"
    assert client.get(f"{API}/failed-jobs", headers=headers).get_json()["items"] == []
