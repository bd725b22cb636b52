"""Store URL validation: only public https stores pass (http only with the development flag)."""
from __future__ import annotations

import pytest

from integrations.woocommerce.urls import valid_store_url


@pytest.mark.parametrize("url,expected", [
    ("https://shop.example.com", "https://shop.example.com"),
    ("https://Shop.Example.com/", "https://shop.example.com"),
    ("https://example.com/store/", "https://example.com/store"),
    ("https://shop.example.com:443", "https://shop.example.com"),  # the default port names the same store
    ("HTTPS://Shop.Example.com:443/", "https://shop.example.com"),
    ("https://shop.example.com.:443/store/", "https://shop.example.com/store"),
    ("https://xn--80aswg.xn--p1ai", "https://xn--80aswg.xn--p1ai"),  # an internationalised TLD (.рф), as punycode
])
def test_public_https_stores_pass_normalised(url, expected):
    assert valid_store_url(url) == expected


@pytest.mark.parametrize("url", [
    "", None, "shop.example.com", "http://shop.example.com", "ftp://shop.example.com", "javascript:alert(1)",
    "https://user:pw@shop.example.com", "https://shop.example.com@evil.com", "https://127.0.0.1",
    "https://10.0.0.5", "https://192.168.1.1", "https://[::1]", "https://169.254.169.254/latest",
    "https://2130706433", "https://0x7f000001", "https://localhost", "https://api.localhost", "https://nas.local",
    "https://intranet", "https://shop.example.com/?next=https://evil.com", "https://shop.example.com/#x",
    "https://shöp.example.com", "https://shop.example.com\\@evil.com", "https://shop.example.com:99999",
    "https://127.1", "https://0177.0.0.1", "https://shop.example.com:6379",
])
def test_attack_strings_are_refused(url):
    assert valid_store_url(url) is None


@pytest.mark.parametrize("url", [
    "https://shop.example.com/a\x00b", "https://shop.example.com/\x01", "https://shop.example.com/\x7f",
    "https://shop.example.com/a b", "https://shop.example.com/a\x0bb", "https://sh%6fp.example.com",
    "https://shop..example.com", "https://-shop.example.com", "https://shop-.example.com",
    "http://localhost:8080/a\x00b",
])
def test_urls_no_browser_or_database_would_take_as_they_are_are_refused(url):
    # A NUL reached the shops table and failed the key callback with a 500 (after its nonce was
    # spent); a percent-encoded or empty label is a host a browser rewrites, not the one we store.
    assert valid_store_url(url, allow_http=url.startswith("http:")) is None


def test_http_and_local_hosts_only_with_the_development_flag():
    assert valid_store_url("http://localhost:8080/shop", allow_http=True) == "http://localhost:8080/shop"
    assert valid_store_url("http://localhost:8080/shop") is None


def test_a_development_store_on_plain_http_drops_port_80_and_keeps_others():
    assert valid_store_url("HTTP://LocalHost:80/shop/", allow_http=True) == "http://localhost/shop"
    assert valid_store_url("http://localhost:443", allow_http=True) == "http://localhost:443"
    assert valid_store_url("http://[::1]:80", allow_http=True) == "http://[::1]"


def test_a_store_url_is_also_looked_up_in_the_form_rows_stored_before_normalisation_hold():
    from integrations.woocommerce.urls import stored_forms

    assert stored_forms("https://shop.example.com/store") == ("https://shop.example.com/store",
                                                               "https://shop.example.com:443/store")
    assert stored_forms("http://localhost") == ("http://localhost", "http://localhost:80")
    assert stored_forms("http://localhost:8080") == ("http://localhost:8080",)


def test_a_development_store_on_an_ipv6_literal_keeps_its_brackets():
    # Without them "http://::1:8080" is no URL: every later urlsplit of the stored domain fails.
    assert valid_store_url("http://[::1]:8080/shop", allow_http=True) == "http://[::1]:8080/shop"
    assert valid_store_url("http://[fd00::5]", allow_http=True) == "http://[fd00::5]"


def test_a_store_host_resolving_to_a_private_address_is_never_called(app, monkeypatch):
    import socket

    from integrations.base import PermanentPlatformError
    from integrations.woocommerce.transport import vet_address

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.1.2.3", 443))])
    with pytest.raises(PermanentPlatformError, match="non-public"):
        vet_address("https://rebind.example.com")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 443))])
    vet_address("https://shop.example.com")  # a public address passes


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe",     # NAT64 well-known prefix + 169.254.169.254 (DNS64/NAT64 networks)
    "64:ff9b:1::a00:5",       # NAT64 local-use prefix + 10.0.0.5
    "2002:7f00:1::1",         # 6to4 of 127.0.0.1
    "::a9fe:a9fe",            # IPv4-compatible form of 169.254.169.254
])
def test_an_ipv6_address_carrying_a_private_ipv4_is_refused(app, monkeypatch, address):
    import socket

    from integrations.base import PermanentPlatformError
    from integrations.woocommerce.transport import vet_address

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(10, 1, 6, "", (address, 443, 0, 0))])
    with pytest.raises(PermanentPlatformError, match="non-public"):
        vet_address("https://nat64.example.com")


def test_an_ipv6_address_carrying_a_public_ipv4_passes(app, monkeypatch):
    import socket

    from integrations.woocommerce.transport import vet_address

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(10, 1, 6, "", ("64:ff9b::5db8:d822", 443, 0, 0))])
    assert vet_address("https://nat64.example.com") == "64:ff9b::5db8:d822"


def test_store_redirects_are_not_followed(app, session):
    import responses

    from app.crypto import token_cipher
    from integrations.base import PermanentPlatformError
    from integrations.woocommerce.client import call
    from tests.factories import make_shop

    shop = make_shop(session, platform="woocommerce")
    shop.domain = "https://redirecting.example.com"
    shop.access_token_enc, shop.api_secret_enc = token_cipher.encrypt("ck"), token_cipher.encrypt("cs")
    with responses.RequestsMock() as stub:
        stub.get("https://redirecting.example.com/wp-json/wc/v3/orders", status=302,
                 headers={"Location": "http://169.254.169.254/latest/meta-data"})
        with pytest.raises(PermanentPlatformError, match="302"):
            call(shop, "get", "orders")
        assert len(stub.calls) == 1
