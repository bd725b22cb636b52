"""`lojal scheduler` and `lojal jobs failed|retry`."""
from __future__ import annotations

from app import create_app
from app.models import Shop
from jobs.queues import enqueue
from tests.conftest import test_config
from tests.factories import make_shop
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401 (fixtures)


def test_scheduler_refuses_without_redis():
    app = create_app(test_config(REDIS_URL="", RUN_JOBS_IN_PROCESS=True))
    result = app.test_cli_runner().invoke(args=["scheduler"])
    assert result.exit_code == 2 and "REDIS_URL is not set" in result.output


def test_retry_needs_an_id_or_all(worker_app):
    runner = worker_app.test_cli_runner()
    assert runner.invoke(args=["jobs", "retry"]).exit_code == 2
    assert runner.invoke(args=["jobs", "retry", "x", "--all"]).exit_code == 2
    result = runner.invoke(args=["jobs", "retry", "no-such-job"])
    assert result.exit_code == 1 and "no failed job no-such-job" in result.output


def test_failed_jobs_are_listed_and_retried(worker_app, wsession, run_jobs):
    shop = make_shop(wsession, timezone="Nowhere/Atlantis")  # birthdays need the shop's zone: fails
    wsession.commit()
    job = enqueue("jobs.maintenance.birthdays", shop.id, queue_name="maintenance", retries=0,
                  now="2026-03-10T12:00:00+00:00", app=worker_app)
    run_jobs()
    runner = worker_app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "failed"])
    assert listed.exit_code == 0
    [line] = [line for line in listed.output.splitlines() if line.startswith(job.id)]
    assert "jobs.maintenance.birthdays" in line and "maintenance" in line and "Nowhere/Atlantis" in line
    assert "1 failed jobs" in listed.output

    wsession.get(Shop, shop.id).timezone = "Europe/Oslo"  # the cause is fixed
    wsession.commit()
    retried = runner.invoke(args=["jobs", "retry", job.id])
    assert retried.exit_code == 0 and "requeued 1 jobs" in retried.output
    run_jobs()
    assert job.id not in runner.invoke(args=["jobs", "failed"]).output
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == "noop"


def test_retry_all(worker_app, wsession, run_jobs):
    for _ in range(2):
        enqueue("jobs.maintenance.for_each_active_shop", "os.system", queue_name="maintenance", retries=0,
                app=worker_app)
    run_jobs()
    runner = worker_app.test_cli_runner()
    assert "2 failed jobs" in runner.invoke(args=["jobs", "failed"]).output
    assert "requeued 2 jobs" in runner.invoke(args=["jobs", "retry", "--all"]).output
    assert "0 failed jobs" in runner.invoke(args=["jobs", "failed"]).output


def test_without_redis_a_retried_failed_job_runs_at_once():
    # In-process mode has no worker: a failed job requeued onto a queue would wait there for ever
    # (and leave the failed list), while the command said it was requeued.
    from tests.conftest import app_session

    app = create_app(test_config(REDIS_URL="", RUN_JOBS_IN_PROCESS=True))
    with app_session(app) as session:
        shop = make_shop(session, timezone="Nowhere/Atlantis")
        session.commit()
        job = enqueue("jobs.maintenance.birthdays", shop.id, queue_name="maintenance",
                      now="2026-03-10T12:00:00+00:00", app=app)
        assert job.get_status() == "failed"  # it ran inside enqueue
        session.get(Shop, shop.id).timezone = "Europe/Oslo"  # the cause is fixed
        session.commit()
    runner = app.test_cli_runner()
    retried = runner.invoke(args=["jobs", "retry", job.id])
    assert retried.exit_code == 0 and "requeued 1 jobs" in retried.output
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == "noop"
    assert job.id not in runner.invoke(args=["jobs", "failed"]).output


def test_a_failed_job_another_retry_took_meanwhile_is_reported_gone(worker_app, wsession, run_jobs):  # noqa: F811
    # Two retries at once (a double-clicked console button, two operators): both list the job,
    # the first requeues it, the second must find nothing to do instead of failing with a 500.
    from jobs.maintenance import requeue_failed
    from jobs.queues import queue

    job = enqueue("jobs.maintenance.for_each_active_shop", "os.system", queue_name="maintenance", retries=0,
                  app=worker_app)
    run_jobs()
    registry = queue("maintenance", worker_app).failed_job_registry
    assert job.id in registry.get_job_ids()  # what both retries listed
    assert requeue_failed(worker_app, registry, job.id) is True
    assert requeue_failed(worker_app, registry, job.id) is False
    queue("maintenance", worker_app).remove(job.id)  # leave nothing queued for other tests
