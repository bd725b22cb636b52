"""The access log's redaction: secret query values go, everything else stays as sent
(the whole path through gunicorn: tests/test_deploy_files.py)."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from app.access_log import redact_query, redact_url


@pytest.mark.parametrize("query, logged", [
    ("code=abc&shop=x.myshopify.com&hmac=f00", "code=[redacted]&shop=x.myshopify.com&hmac=[redacted]"),
    ("ID_TOKEN=a&Session=b&signature=c&token=d", "ID_TOKEN=[redacted]&Session=[redacted]&signature=[redacted]&token=[redacted]"),
    ("%63ode=abc&host=aG9zdA%3D%3D", "%63ode=[redacted]&host=aG9zdA%3D%3D"),  # an encoded name is still `code`
    ("code=&code=second", "code=[redacted]&code=[redacted]"),
    ("shop=x&embedded=1", "shop=x&embedded=1"),
    ("", ""),
])
def test_secret_parameters_are_redacted_and_the_rest_kept_as_sent(query, logged):
    assert redact_query(query) == logged


def test_a_url_inside_a_parameter_has_its_secrets_redacted_too():
    reload = quote("/shopify/app?shop=x.myshopify.com&id_token=eyJ.secret", safe="")
    logged = redact_query(f"shop=x.myshopify.com&shopify-reload={reload}")
    assert "eyJ.secret" not in logged and "shopify-reload=/shopify/app%3Fshop%3Dx.myshopify.com%26id_token%3D" in logged


def test_urls_without_a_query_are_unchanged_and_a_referer_is_redacted():
    assert redact_url("/healthz") == "/healthz"
    assert redact_url("https://admin.shopify.com/store/x/apps/lojal?id_token=t&locale=en") == (
        "https://admin.shopify.com/store/x/apps/lojal?id_token=[redacted]&locale=en")


@pytest.mark.parametrize("url, logged", [
    ("/email/unsubscribe/eyJ.c2lnbmVk", "/email/unsubscribe/[redacted]"),
    ("/email/unsubscribe/eyJ.c2lnbmVk?lang=de", "/email/unsubscribe/[redacted]?lang=de"),
    ("https://lojal.example/email/unsubscribe/eyJ.c2lnbmVk", "https://lojal.example/email/unsubscribe/[redacted]"),
    ("/email/unsubscribe/", "/email/unsubscribe/"),
])
def test_the_unsubscribe_links_token_in_the_path_is_redacted(url, logged):
    # The signed token is the link's only credential: whoever reads it can unsubscribe that customer.
    assert redact_url(url) == logged
