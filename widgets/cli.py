"""`lojal widget token SHOP CUSTOMER_ID [--ttl 3600]`: a customer token for trying the API."""
from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import with_appcontext


@click.group("widget")
def widget_group() -> None:
    """The shopper widget API."""


@widget_group.command("token")
@click.argument("shop_ref", metavar="SHOP")
@click.argument("customer_id")
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 24 * 3600),
              help="Lifetime in seconds (at most 24 h, as the API accepts).")
@with_appcontext
def widget_token(shop_ref: str, customer_id: str, ttl: int) -> None:
    """Print a signed customer token for SHOP (uid or domain) and the platform's CUSTOMER_ID.

    Creates the shop's widget secret first if it has none (e.g. the demo shop)."""
    from app.extensions import db
    from app.loyalty.shopper import find_customer
    from widgets.auth import shop_by_ref
    from widgets.tokens import ensure_widget_secret, sign_customer_token

    shop = shop_by_ref(shop_ref.strip())
    if shop is None:
        raise click.BadParameter("no active shop with this uid or domain", param_hint="SHOP")
    secret = ensure_widget_secret(db.session, shop)
    if find_customer(db.session, shop.id, customer_id) is None:
        click.echo(f"note: {shop.domain} has no customer {customer_id} yet; /me will answer 404", err=True)
    db.session.commit()
    click.echo(sign_customer_token(secret, shop.uid, customer_id, datetime.now(UTC), ttl=ttl))


@widget_group.command("secret")
@click.argument("shop_ref", metavar="SHOP")
@with_appcontext
def widget_secret_command(shop_ref: str) -> None:
    """Print SHOP's widget secret (created if it has none), for the WordPress plugin's settings or
    a headless storefront's server that signs customer tokens. Keep it server-side."""
    from app.extensions import db
    from widgets.auth import shop_by_ref
    from widgets.tokens import ensure_widget_secret

    shop = shop_by_ref(shop_ref.strip())
    if shop is None:
        raise click.BadParameter("no active shop with this uid or domain", param_hint="SHOP")
    secret = ensure_widget_secret(db.session, shop)
    db.session.commit()
    click.echo(secret)
