"""A shop named by a person: uid, or domain in any form it is or was stored under."""
from __future__ import annotations

from integrations.shop_refs import names, ref_domains


def test_a_store_url_names_its_normalised_form_and_the_default_port_form_stored_before():
    for ref in ("shop.example", "shop.example/", "https://Shop.Example", "https://shop.example:443/"):
        assert {"https://shop.example", "https://shop.example:443"} <= ref_domains(ref), ref
    assert "https://shop.example:443/wp" in ref_domains("https://shop.example/wp/")
    assert ref_domains("https://shop.example:8443") == {"https://shop.example:8443"}
    assert ref_domains("name.myshopify.com") >= {"name.myshopify.com"}  # Shopify stores the bare host


def test_names_agrees_with_the_forms_and_the_uid():
    assert names("shop.example", "u1", "https://shop.example:443")
    assert names("u1", "u1", "https://other.example")
    assert not names("https://shop.example:8443", "u1", "https://shop.example:443")
    assert not names("http://shop.example", "u1", "https://shop.example")
