"""Where a shop's storefront lives: its origin(s) for CORS and the URLs we send shoppers to."""
from __future__ import annotations

from urllib.parse import urlsplit

from app.loyalty.program import program_settings
from app.models import Shop
from integrations.woocommerce.urls import DEFAULT_PORTS


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
    """The browser origin of `url`: a browser never names the default port (a store saved as
    `https://host:443` is served from `https://host`)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    try:
        port = parts.port
    except ValueError:  # not a port: such an origin matches no browser's, as before
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{scheme}://{host}" if port is None or port == DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


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
