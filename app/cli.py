"""Command line: `lojal ...` (the same commands as `flask --app wsgi ...`)."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, NoAppException, ScriptInfo, with_appcontext


def register_commands(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(ledger_group)
    app.cli.add_command(shops_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(jobs_group)
    app.cli.add_command(backfill_command)
    from widgets.cli import widget_group

    app.cli.add_command(widget_group)
    from app.admin.cli import staff_group

    app.cli.add_command(staff_group)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork", is_flag=True, help="Fork a work horse per job (RQ's default Worker) instead of running "
                                           "jobs in the worker process.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, fork: bool) -> None:
    """Run a job worker on QUEUES (default: all of webhooks, rewards, emails, maintenance)."""
    from app.extensions import use_worker_engine
    from jobs.worker import WORKER_CLASSES, run_worker

    app = current_app._get_current_object()
    use_worker_engine(app)  # no pool pre-ping in workers: a job on a dead connection is re-run instead
    run_worker(app, queues, burst=burst, worker_class=WORKER_CLASSES[fork])


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the job schedule (RQ's CronScheduler): many may run, one leads and enqueues."""
    from jobs.queues import runs_in_process
    from jobs.schedule import build_scheduler

    app = current_app._get_current_object()
    if runs_in_process(app):
        raise click.UsageError("REDIS_URL is not set: jobs run in-process, so there is no queue to schedule onto")
    build_scheduler(app).start()


@click.group("jobs")
def jobs_group() -> None:
    """Failed background jobs: list and retry."""


@jobs_group.command("failed")
@with_appcontext
def jobs_failed() -> None:
    """List failed jobs on every queue (kept JOB_FAILURE_TTL seconds)."""
    from jobs.maintenance import failed_jobs

    found = failed_jobs(current_app._get_current_object())
    for job in found:
        failed_at = job.failed_at.isoformat(timespec="seconds") if job.failed_at else "-"
        click.echo(f"{job.id}  {job.func}  {job.queue}  {failed_at}  {job.error}")
    click.echo(f"{len(found)} failed jobs")


@jobs_group.command("retry")
@click.argument("job_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Requeue every failed job.")
@with_appcontext
def jobs_retry(job_id: str | None, retry_all: bool) -> None:
    """Requeue the failed job JOB_ID, or every failed job with --all."""
    from jobs.maintenance import retry_failed

    if bool(job_id) == retry_all:
        raise click.UsageError("give a JOB_ID or --all (not both)")
    requeued = retry_failed(current_app._get_current_object(), None if retry_all else job_id)
    if job_id and not requeued:
        raise click.ClickException(f"no failed job {job_id}")
    click.echo(f"requeued {len(requeued)} jobs")


@click.command("demo")
@click.option("--customers", default=50, show_default=True, help="How many demo shoppers to create.")
@with_appcontext
def demo_command(customers: int) -> None:
    """Seed a demo shop (program, rewards, tiers, shoppers with orders) unless one exists."""
    from app.demo import seed_demo
    from app.extensions import db

    shop, created = seed_demo(db.session, customers=customers)
    db.session.commit()
    click.echo(f"demo shop {shop.domain} (id {shop.id}): {'seeded' if created else 'already there'}")


@click.group("ledger")
def ledger_group() -> None:
    """Ledger maintenance."""


# Shop ids are BIGINT: a larger number is refused by click, not by PostgreSQL with a traceback.
SHOP_ID = click.IntRange(1, 2**63 - 1)


@ledger_group.command("check")
@click.option("--shop-id", type=SHOP_ID, default=None, help="Only this shop (default: every shop).")
@with_appcontext
def ledger_check(shop_id: int | None) -> None:
    """Prove every cached balance equals the sum of its ledger entries (exit 1 if not)."""
    from app.extensions import db
    from app.loyalty.ledger import find_balance_drift
    from app.models import Shop

    # A mistyped id would otherwise find no drift and report "ledger ok".
    if shop_id is not None and db.session.get(Shop, shop_id) is None:
        raise click.BadParameter(f"no shop {shop_id}", param_hint="--shop-id")
    drift = find_balance_drift(db.session, shop_id)
    for customer_id, cached, summed, cached_pending, summed_pending in drift:
        click.echo(f"customer {customer_id}: balance {cached} != ledger {summed}; "
                   f"pending {cached_pending} != ledger {summed_pending}", err=True)
    if drift:
        sys.exit(1)
    click.echo("ledger ok: every cached balance equals the sum of its entries")


@click.group("shops")
def shops_group() -> None:
    """Connect and manage shops."""


@shops_group.group("connect")
def shops_connect_group() -> None:
    """Connect a shop without the app-store install (custom apps)."""


@shops_connect_group.command("shopify")
@click.argument("domain")
@click.option("--token", prompt="Admin API access token", hide_input=True,
              help="The custom app's Admin API access token (prompted, hidden, when omitted).")
@with_appcontext
def shops_connect_shopify(domain: str, token: str) -> None:
    """Connect DOMAIN (name.myshopify.com) with a custom app's access token: the same
    post-install as the app-store install (token encrypted, program, webhooks, backfill)."""
    from datetime import UTC, datetime

    from app.extensions import db
    from integrations.shopify.domains import valid_shop_domain
    from integrations.shopify.install import post_install

    shop_domain = valid_shop_domain(domain)
    if shop_domain is None:
        raise click.BadParameter("must be a shop domain like name.myshopify.com", param_hint="DOMAIN")
    if not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    shop = post_install(db.session, shop_domain, token.strip(), now=datetime.now(UTC))
    click.echo(f"connected {shop.domain} (shop id {shop.id}); webhook subscription and backfill enqueued")


@shops_connect_group.command("woocommerce")
@click.argument("url")
@click.option("--key", prompt="Consumer key", hide_input=True,
              help="A REST API consumer key with read_write permissions (prompted, hidden, when omitted).")
@click.option("--secret", prompt="Consumer secret", hide_input=True,
              help="The key's consumer secret (prompted, hidden, when omitted).")
@with_appcontext
def shops_connect_woocommerce(url: str, key: str, secret: str) -> None:
    """Connect the store at URL with REST API keys made in WooCommerce > Settings > Advanced:
    the same post-connect as the key exchange (keys encrypted, program, webhooks, backfill)."""
    from datetime import UTC, datetime

    from app.extensions import db
    from integrations.woocommerce.connect import connect_store
    from integrations.woocommerce.urls import valid_store_url

    store_url = valid_store_url(url, allow_http=bool(current_app.config.get("WOOCOMMERCE_ALLOW_HTTP")))
    if store_url is None:
        raise click.BadParameter("must be the store's public https address, e.g. https://shop.example.com",
                                 param_hint="URL")
    for value, hint in ((key, "--key"), (secret, "--secret")):
        if not value.strip():
            raise click.BadParameter("must not be empty", param_hint=hint)
    shop = connect_store(db.session, store_url, key.strip(), secret.strip(), now=datetime.now(UTC))
    click.echo(f"connected {shop.domain} (shop id {shop.id}, uid {shop.uid}); "
               "key check, webhooks and backfill enqueued")


@shops_group.command("disconnect")
@click.argument("shop_uid")
@with_appcontext
def shops_disconnect(shop_uid: str) -> None:
    """Disconnect a WooCommerce store: delete Lojal's webhooks in it and drop its API keys.
    Customers, orders and the ledger are kept (reconnecting picks them up again)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Shop
    from integrations.base import TransientPlatformError
    from integrations.woocommerce.upkeep import disconnect

    shop = db.session.scalar(select(Shop).where(Shop.uid == shop_uid))
    if shop is None:
        raise click.BadParameter("no shop with this uid", param_hint="SHOP_UID")
    if shop.platform != "woocommerce":
        # A Shopify shop is disconnected by uninstalling the app in the Shopify admin.
        raise click.BadParameter(f"shop {shop_uid} is a {shop.platform} shop; only WooCommerce stores are "
                                 "disconnected here", param_hint="SHOP_UID")
    try:
        deleted = disconnect(db.session, shop, actor="cli")
    except TransientPlatformError as exc:
        db.session.rollback()
        raise click.ClickException(f"the store did not answer ({exc}); nothing changed, try again") from None
    db.session.commit()
    click.echo(f"disconnected {shop.domain} (shop {shop_uid}): {deleted} webhooks deleted, keys dropped, data kept")


@shops_group.command("subscribe")
@click.argument("domain", required=False)
@with_appcontext
def shops_subscribe(domain: str | None) -> None:
    """Subscribe installed Shopify shops (or DOMAIN alone) to every webhook topic again: the
    install's subscription job, for shops installed before an upgrade added a topic (orders/edited)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Shop
    from jobs.queues import enqueue

    query = select(Shop.id).where(Shop.platform == "shopify", Shop.status == "active").order_by(Shop.id)
    ids = db.session.scalars(query.where(Shop.domain == domain) if domain else query).all()
    db.session.rollback()
    if domain and not ids:
        raise click.BadParameter("no installed Shopify shop with this domain", param_hint="DOMAIN")
    for shop_id in ids:
        # Idempotent: topics already subscribed come back "already taken", which counts as done.
        enqueue("jobs.shopify_install.subscribe_webhooks", shop_id, queue_name="maintenance")
    click.echo(f"webhook subscription enqueued for {len(ids)} Shopify shop{'' if len(ids) == 1 else 's'}")


@click.group("keys")
def keys_group() -> None:
    """Encryption keys for secrets at rest (TOKEN_ENCRYPTION_KEYS)."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-encrypt every shop's stored secrets with the newest key (the first in
    TOKEN_ENCRYPTION_KEYS). Afterwards the older keys can be removed."""
    from cryptography.fernet import InvalidToken
    from sqlalchemy import select

    from app.crypto import token_cipher
    from app.extensions import db
    from app.models import Shop

    secret_columns = ("access_token_enc", "refresh_token_enc", "widget_secret_enc", "webhook_secret_enc",
                      "api_secret_enc")
    # Rows are locked so a token refresh committed meanwhile is not overwritten with the
    # re-encrypted old token; one transaction, so a failure leaves every row as it was.
    shops = db.session.scalars(select(Shop).order_by(Shop.id).with_for_update()).all()
    values = 0
    for shop in shops:
        for column in secret_columns:
            ciphertext = getattr(shop, column)
            if not ciphertext:
                continue
            try:
                setattr(shop, column, token_cipher.rotate(ciphertext))
            except InvalidToken:
                db.session.rollback()
                raise click.ClickException(
                    f"shop {shop.id}: {column} cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS; "
                    "nothing changed (put back the key it was written with, then rotate again)") from None
            values += 1
    db.session.commit()
    from integrations.woocommerce.connect import rotate_parked_keys

    parked = rotate_parked_keys()
    click.echo(f"re-encrypted {values} secrets of {len(shops)} shops with the newest key"
               + (f", and {parked} WooCommerce key pairs awaiting their check" if parked else ""))


def _pause(seconds: float) -> None:
    """Between two looks at a running backfill (the tests run the worker here instead)."""
    import time

    time.sleep(seconds)


@click.command("backfill")
@click.argument("shop_ref", metavar="SHOP")
@click.option("--no-wait", is_flag=True, help="Enqueue the backfill and return without following it.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between two progress checks.")
@with_appcontext
def backfill_command(shop_ref: str, no_wait: bool, interval: float) -> None:
    """Import the order history of SHOP (its uid or domain) and show the progress with an ETA.

    The backfill runs on the workers as a chain of jobs; this follows the newest one until the
    chain ends. Without REDIS_URL it runs here, synchronously, and only the result is shown.
    """
    from app.extensions import db
    from integrations.shop_refs import find_shop
    from jobs import shopify_sync, woocommerce_sync
    from jobs.progress import backfill_progress
    from jobs.queues import runs_in_process

    enqueue_backfill = {"shopify": shopify_sync.enqueue_backfill, "woocommerce": woocommerce_sync.enqueue_backfill}
    shop = find_shop(db.session, shop_ref)
    if shop is None:
        raise click.BadParameter("no shop with this uid or domain", param_hint="SHOP")
    if shop.platform not in enqueue_backfill:
        raise click.BadParameter(f"{shop.domain} is a {shop.platform} shop: it has no order backfill",
                                 param_hint="SHOP")
    if shop.status != "active":
        raise click.ClickException(f"{shop.domain} is {shop.status}: reconnect it before a backfill")
    shop_id, domain, platform = shop.id, shop.domain, shop.platform
    db.session.rollback()  # the job reads the shop itself; hold no transaction while following
    app = current_app._get_current_object()
    job = enqueue_backfill[platform](shop_id)
    if runs_in_process(app):
        _report_backfill(domain, backfill_progress(app, shop_id))
        return
    click.echo(f"backfill of {domain} enqueued (job {job.id})")
    if not no_wait:
        _report_backfill(domain, _follow_backfill(app, shop_id, interval))


def _follow_backfill(app: Flask, shop_id: int, interval: float):
    """Poll the chain's newest job (jobs.progress) and drive a progress bar until the chain ends."""
    from contextlib import ExitStack

    from jobs.progress import backfill_progress

    with ExitStack() as stack:
        bar, shown = None, 0
        while True:
            progress = backfill_progress(app, shop_id)
            if progress is None:
                raise click.ClickException("the backfill job is gone (expired or deleted); run the command again")
            if bar is None and (progress.total_estimate is not None or progress.done or progress.finished):
                bar = stack.enter_context(click.progressbar(
                    length=max(progress.total_estimate or 0, progress.done, 1), label="orders", show_eta=True,
                    show_pos=True, show_percent=True))
            if bar is not None:
                # An estimate, not a promise: orders placed meanwhile can make `done` overtake it.
                bar.length = max(bar.length, progress.total_estimate or 0, progress.done)
                if progress.done > shown:
                    bar.update(progress.done - shown)
                    shown = progress.done
            if progress.finished:
                return progress
            _pause(interval)


def _report_backfill(domain: str, progress) -> None:
    if progress is None:
        raise click.ClickException("the backfill left no job to report on")
    if progress.result == "done":
        skipped = f", {progress.skipped} skipped as malformed (see the worker's log)" if progress.skipped else ""
        click.echo(f"backfill of {domain} done: {progress.done} orders{skipped}")
        return
    reason = progress.error or progress.result or progress.status
    raise click.ClickException(f"backfill of {domain} ended without finishing ({reason}) after "
                               f"{progress.done} orders; see the worker's log")


class BadConfiguration(NoAppException):
    """The settings did not load. The message names each bad setting: shown as is, no traceback
    (Flask prints a NoAppException's message alone)."""


def _create_app_for_cli():
    from app import create_app
    from app.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise BadConfiguration(str(exc)) from None


class LojalGroup(FlaskGroup):
    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugin_commands()
        if click.Group.get_command(self, ctx, name) is None:
            # One of the app's commands: Flask would print the error and then "No such command".
            try:
                ctx.ensure_object(ScriptInfo).load_app()
            except BadConfiguration as exc:
                raise click.ClickException(exc.message) from None
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        # An unreachable service is the operator's to fix, not a bug: one line naming the
        # setting (the driver's message carries host and port, never the password).
        import redis
        from sqlalchemy.exc import OperationalError

        try:
            return super().invoke(ctx)
        except redis.ConnectionError as exc:
            raise click.ClickException(f"Redis (REDIS_URL) is unreachable: {exc}") from None
        except OperationalError as exc:
            raise click.ClickException(f"the database (DATABASE_URL) failed: {exc.orig}".strip()) from None


@click.group(cls=LojalGroup, create_app=_create_app_for_cli, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Lojal: loyalty and rewards for Shopify and WooCommerce stores."""
