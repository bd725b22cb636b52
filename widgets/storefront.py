"""Where a shop's storefront lives: its origin(s) for CORS and the URLs we send shoppers to."""
from __future__ import annotations

from urllib.parse import urlsplit

from app.loyalty.program import program_settings
from app.models import Shop


def home_url(shop: Shop) -> str:
    """The storefront's home page, without a trailing slash: the first configured storefront
    origin (a custom domain), else the shop's own domain (WooCommerce stores its full URL)."""
    configured = program_settings(shop).storefront_origins
    if configured:
        return configured[0]
    if "://" in shop.domain:
        return shop.domain.rstrip("/")
    return f"https://{shop.domain}"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def storefront_origins(shop: Shop) -> set[str]:
    """Every browser origin the shop's storefront is served from."""
    own = shop.domain if "://" in shop.domain else f"https://{shop.domain}"
    return {origin_of(own), *(origin_of(o) for o in program_settings(shop).storefront_origins)}


def account_links(shop: Shop) -> dict[str, str]:
    """Sign-up and log-in pages, per platform (a shopper must have an account to collect points)."""
    home = home_url(shop)
    if shop.platform == "woocommerce":
        return {"join_url": f"{home}/my-account/", "login_url": f"{home}/my-account/"}
    return {"join_url": f"{home}/account/register", "login_url": f"{home}/account/login"}
