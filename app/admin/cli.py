"""`lojal staff create SHOP EMAIL --role owner` and `lojal staff token SHOP EMAIL NAME`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

CLI_ACTOR = "cli"


def _shop(ref: str):
    """SHOP is the shop's uid, domain, or numeric id."""
    from app.extensions import db
    from integrations.shop_refs import find_shop

    shop = find_shop(db.session, ref, by_id=True)
    if shop is None:
        raise click.BadParameter("no shop with this id, uid or domain", param_hint="SHOP")
    return shop


@click.group("staff")
def staff_group() -> None:
    """Staff accounts for the console and the admin API."""


@staff_group.command("create")
@click.argument("shop_ref", metavar="SHOP")
@click.argument("email")
@click.option("--role", type=click.Choice(["owner", "support", "viewer"]), default="owner", show_default=True)
@click.option("--name", default="", help="Display name.")
@click.password_option(help="At least 10 characters; prompted for (twice) when left out.")
@with_appcontext
def staff_create(shop_ref: str, email: str, role: str, name: str, password: str) -> None:
    """Add a staff member to SHOP (uid, domain or id) who signs in with EMAIL and a password."""
    from app.admin.staff_accounts import create_staff
    from app.extensions import db
    from app.loyalty.errors import LoyaltyError

    if len(password) < 10:
        raise click.BadParameter("at least 10 characters", param_hint="--password")
    shop = _shop(shop_ref)
    try:
        staff = create_staff(db.session, shop.id, email, role, password, actor=CLI_ACTOR, name=name)
    except LoyaltyError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"{staff.role} {staff.email} (id {staff.id}) added to {shop.domain}")


@staff_group.command("token")
@click.argument("shop_ref", metavar="SHOP")
@click.argument("email")
@click.argument("name")
@with_appcontext
def staff_token(shop_ref: str, email: str, name: str) -> None:
    """Create a personal API token NAME for EMAIL of SHOP; it is printed once, only here."""
    from app.admin.auth import normalize_staff_email
    from app.admin.staff_accounts import create_token
    from app.extensions import db
    from app.loyalty.errors import LoyaltyError
    from app.models import StaffUser, for_shop

    shop = _shop(shop_ref)
    staff = db.session.scalar(for_shop(StaffUser, shop.id).where(StaffUser.email == normalize_staff_email(email)))
    if staff is None:
        raise click.BadParameter(f"no staff member {email} in {shop.domain}", param_hint="EMAIL")
    try:
        _, token = create_token(db.session, shop.id, staff.id, name, actor=CLI_ACTOR)
    except LoyaltyError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(token)
    click.echo(f"(the token acts as {staff.email}, {staff.role}; it is not shown again)", err=True)
