"""Gunicorn's access log (WEB_ACCESS_LOG) without the secrets some URLs and headers carry.

Shopify puts credentials in query strings: the install callback's `code` and `hmac`, App
Home's `id_token` and `session`, the app proxy's `signature`. Their values are replaced by
[redacted] in every atom a log format can name (the request line, the query string, the
referer, environ variables), also inside a parameter whose value is itself a URL (the
patch-id-token page's `shopify-reload`); credential headers (cookies, Authorization,
webhook signatures) are redacted whole, and so is a capability token carried in the path (the
unsubscribe link's, app/web/email.py). Used through gunicorn.conf.py's `logger_class`.
"""
from __future__ import annotations

import re
from urllib.parse import quote, unquote_plus

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# Compared case-insensitively with the decoded parameter name.
SECRET_PARAMETERS = frozenset({"code", "id_token", "hmac", "signature", "session", "token",
                               "access_token", "refresh_token", "client_secret"})
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                            "x-shopify-access-token", "x-shopify-hmac-sha256", "x-wc-webhook-signature"})
# Routes whose path segment is the credential itself: /email/unsubscribe/<token>.
_SECRET_PATH = re.compile(r"(/email/unsubscribe/)[^/?#]+", re.IGNORECASE)
_QUERY_ATOMS = frozenset({"q", "{query_string}e"})
_PATH_ATOMS = frozenset({"U", "{path_info}e", "{script_name}e"})
_URL_ATOMS = frozenset({"f", "{referer}i", "{http_referer}e", "{raw_uri}e", "{request_uri}e", "{location}o"})


def redact_query(query: str) -> str:
    """The query string with secret parameters' values replaced; everything else as sent."""
    parts = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            value = REDACTED
        elif "?" in unquote_plus(value):  # a URL in a parameter may carry secrets of its own
            value = quote(redact_url(unquote_plus(value)), safe="/:")
        parts.append(f"{name}{equals}{value}")
    return "&".join(parts)


def redact_path(path: str) -> str:
    """A path with any capability token in it (see _SECRET_PATH) replaced."""
    return _SECRET_PATH.sub(rf"\g<1>{REDACTED}", path)


def redact_url(url: str) -> str:
    """A URL or request target (`/path?query`, `https://host/path?query`) with its query and
    any path token redacted."""
    base, question, query = url.partition("?")
    return f"{redact_path(base)}{question}{redact_query(query)}" if question else redact_path(url)


def _is_secret_header(atom: str) -> bool:
    if not atom.startswith("{") or atom[-2:] not in ("}i", "}o", "}e"):
        return False
    name = atom[1:-2].lower()
    if atom.endswith("e"):  # environ: HTTP_COOKIE
        name = name.removeprefix("http_").replace("_", "-")
    return name in SECRET_HEADERS


class RedactingLogger(Logger):
    """gunicorn's logger, with access-log atoms redacted before the format is applied."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = f"{environ['REQUEST_METHOD']} {redact_url(environ['RAW_URI'])} {environ['SERVER_PROTOCOL']}"
        for atom, value in list(atoms.items()):
            if not isinstance(value, str):
                continue
            if atom in _QUERY_ATOMS:
                atoms[atom] = redact_query(value)
            elif atom in _PATH_ATOMS:
                atoms[atom] = redact_path(value)
            elif atom in _URL_ATOMS:
                atoms[atom] = redact_url(value)
            elif _is_secret_header(atom):
                atoms[atom] = REDACTED
        return atoms
