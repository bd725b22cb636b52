"""Take the README's console screenshots (docs/console-dashboard.png, docs/console-customer.png).

Run by hand: `.venv/bin/python -m tests.app.console.screenshots` (DATABASE_URL / REDIS_URL as
for the tests; it seeds its own demo shop under a fresh domain, and commits it).
"""
from __future__ import annotations

import secrets
from datetime import UTC, datetime


from sqlalchemy import select

from app import PROJECT_ROOT
from app.admin.staff_accounts import create_staff
from app.demo import seed_demo
from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.models import Customer, Redemption
from tests.app.console.browser import chromium, serve, served_app, sign_in_page
from tests.ports import free_port

DOCS = PROJECT_ROOT / "docs"
PASSWORD = "screenshot-password"


def main() -> None:
    port = free_port()
    app = served_app(port)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        shop, _ = seed_demo(db.session, customers=120, now=datetime.now(UTC),
                            domain=f"demo-{secrets.token_hex(3)}.lojal.local")
        email = f"owner@{shop.domain}"
        create_staff(db.session, shop.id, email, "owner", PASSWORD, actor="screenshots")
        # A customer who redeemed a reward, with the longest history: the fullest page.
        customer_id = db.session.scalar(
            select(Customer.id).join(Redemption, Redemption.customer_id == Customer.id)
            .where(Customer.shop_id == shop.id).order_by(Customer.orders_count.desc(), Customer.id).limit(1))
        adjust_points(db.session, shop.id, customer_id, 150, reason="service_recovery", actor=f"staff:0:{email}",
                      note="Sorry your parcel was late!", now=datetime.now(UTC))
        db.session.commit()
    DOCS.mkdir(exist_ok=True)
    with serve(app, port) as base, chromium(1280, 900) as page:
        sign_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/admin/?days=90")
        page.screenshot(path=str(DOCS / "console-dashboard.png"), full_page=True)
        page.goto(f"{base}/admin/customers/{customer_id}")
        page.screenshot(path=str(DOCS / "console-customer.png"), full_page=True)
    print(f"wrote {DOCS / 'console-dashboard.png'} and {DOCS / 'console-customer.png'}")


if __name__ == "__main__":
    main()
