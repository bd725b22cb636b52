"""Store URLs: validated before any redirect or outbound call (no SSRF, no open redirect)."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# Host names that never name a public store.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home", ".corp", ".localdomain")
# The port a URL of each scheme names when it names none (widgets.storefront's origins use it too).
DEFAULT_PORTS = {"https": 443, "http": 80}
# Dot-separated DNS labels (letters, digits, inner hyphens; underscores as some dev hosts have
# them): no empty label and no `%`, which a browser would decode into another host than we store.
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")


def valid_store_url(value: str | None, *, allow_http: bool = False) -> str | None:
    """The normalised store URL (`https://host[:port][/path]`: scheme and host lowercased, no
    default port, no trailing slash), or None: one store is one URL, however it was written.

    Refused: other schemes (http only with allow_http, for local development), userinfo,
    query or fragment, IP literals, localhost and private-network names, non-ASCII hosts.
    """
    if not value or not isinstance(value, str) or not value.isascii() or len(value) > 512:
        return None
    if any(c.isspace() or not c.isprintable() for c in value.strip()):
        # A NUL cannot be stored (PostgreSQL text) and spaces or controls are no store's address.
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    schemes = ("https", "http") if allow_http else ("https",)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in schemes or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.query or parts.fragment or "\\" in value or "@" in parts.netloc:
        return None
    if not _HOST_NAME.fullmatch(host) and not (allow_http and _is_ip_literal(host)):
        return None
    if not allow_http and (_is_ip_literal(host) or host == "localhost" or host.endswith(_LOCAL_SUFFIXES)
                           or "." not in host or not _top_level_label(host.rsplit(".", 1)[1])
                           or port not in (None, 443)):
        # A numeric last label catches the short and octal IPv4 forms resolvers accept
        # (127.1, 0177.0.0.1); only the standard HTTPS port is reachable from us.
        return None
    if port == DEFAULT_PORTS[parts.scheme]:
        port = None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal (development stores only, refused above otherwise)
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def stored_forms(store_url: str) -> tuple[str, ...]:
    """A normalised store URL and the form a shop connected before default ports were dropped may
    hold (`https://host:443/path`): lookups try both, so no store becomes a second shop."""
    parts = urlsplit(store_url)
    if parts.port is not None:
        return (store_url,)
    return (store_url, f"{parts.scheme}://{parts.netloc}:{DEFAULT_PORTS[parts.scheme]}{parts.path}")


def _top_level_label(label: str) -> bool:
    """Letters, or an internationalised TLD in punycode (xn--p1ai is .рф): never a number."""
    return label.isalpha() or (label.startswith("xn--") and label[4:].isalnum())


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # Integer and hex forms some resolvers accept as IPv4 (e.g. 2130706433, 0x7f000001).
    return host.isdigit() or host.lower().startswith("0x")
