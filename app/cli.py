"""Command line: `lojal ...` (the same commands as `flask --app wsgi ...`)."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext


def register_commands(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(ledger_group)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Run a job worker on QUEUES (default: all of webhooks, rewards, emails, maintenance)."""
    from jobs.worker import run_worker

    run_worker(current_app._get_current_object(), queues, burst=burst)


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


@ledger_group.command("check")
@click.option("--shop-id", type=int, default=None)
@with_appcontext
def ledger_check(shop_id: int | None) -> None:
    """Prove every cached balance equals the sum of its ledger entries (exit 1 if not)."""
    from app.extensions import db
    from app.loyalty.ledger import find_balance_drift

    drift = find_balance_drift(db.session, shop_id)
    for customer_id, cached, summed, cached_pending, summed_pending in drift:
        click.echo(f"customer {customer_id}: balance {cached} != ledger {summed}; "
                   f"pending {cached_pending} != ledger {summed_pending}", err=True)
    if drift:
        sys.exit(1)
    click.echo("ledger ok: every cached balance equals the sum of its entries")


def _create_app_for_cli():
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app_for_cli, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Lojal: loyalty and rewards for Shopify and WooCommerce stores."""
