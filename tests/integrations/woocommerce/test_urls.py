"""Store URL validation: only public https stores pass (http only with the development flag)."""
from __future__ import annotations

import pytest

from integrations.woocommerce.urls import valid_store_url


@pytest.mark.parametrize("url,expected", [
    ("https://shop.example.com", "https://shop.example.com"),
    ("https://Shop.Example.com/", "https://shop.example.com"),
    ("https://example.com/store/", "https://example.com/store"),
    ("https://shop.example.com:8443", "https://shop.example.com:8443"),
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
])
def test_attack_strings_are_refused(url):
    assert valid_store_url(url) is None


def test_http_and_local_hosts_only_with_the_development_flag():
    assert valid_store_url("http://localhost:8080/shop", allow_http=True) == "http://localhost:8080/shop"
    assert valid_store_url("http://localhost:8080/shop") is None
