"""CORS only for the shop's storefront origins; rate limits per shopper, per IP (app-proxy requests:
per forwarded shopper IP, and per shop for guests) and for
redemptions answering 429 with Retry-After and the JSON envelope."""
from __future__ import annotations

import secrets

import pytest

from app import create_app
from tests.conftest import app_session, test_config
from tests.factories import make_customer
from tests.widgets.helpers import bearer, client_for, proxy_query, shopper, token, wclient, widget_shop  # noqa: F401


def test_the_shops_own_origin_gets_cors_headers_without_credentials(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    origin = f"https://{shop.domain}"
    resp = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari), Origin=origin))
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "Origin" in resp.headers["Vary"]


def test_a_foreign_origin_gets_no_cors_headers(session, wclient):
    shop, secret = widget_shop(session)
    other, _ = widget_shop(session)
    kari = shopper(session, shop)
    for origin in ("https://evil.example", f"https://{other.domain}", f"http://{shop.domain}",
                   f"https://{shop.domain}.evil.example", "null"):
        resp = wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari), Origin=origin))
        assert resp.status_code == 200 and "Access-Control-Allow-Origin" not in resp.headers, origin
        assert "Origin" in resp.headers["Vary"]


def test_configured_storefront_origins_are_allowed_too(session, wclient):
    shop, _ = widget_shop(session, storefront_origins=["https://www.kaffebar.example"])
    resp = wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"Origin": "https://www.kaffebar.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.kaffebar.example"


def test_a_store_saved_with_its_default_port_is_allowed_from_the_origin_browsers_send(session, wclient):
    # WooCommerce stores connected before default ports were dropped may hold `https://host:443`;
    # a browser's Origin never names the default port.
    shop, _ = widget_shop(session)
    host = f"port{secrets.token_hex(4)}.example"
    shop.platform, shop.domain = "woocommerce", f"https://{host}:443"
    session.commit()
    resp = wclient.get(f"/widget/v1/program?shop={shop.uid}", headers={"Origin": f"https://{host}"})
    assert resp.headers["Access-Control-Allow-Origin"] == f"https://{host}"


def test_a_preflight_naming_no_shop_is_answered_for_a_store_saved_with_its_default_port(session, wclient):
    # A preflight carries no token and often no ?shop=: the origin alone must find the store.
    shop, _ = widget_shop(session)
    host = f"port{secrets.token_hex(4)}.example"
    shop.platform, shop.domain = "woocommerce", f"https://{host}:443/shop"
    session.commit()
    resp = wclient.options("/widget/v1/me/redemptions", headers={"Origin": f"https://{host}",
                                                                 "Access-Control-Request-Method": "POST"})
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == f"https://{host}"


def test_preflight_is_answered_for_a_shops_origin_only(session, wclient):
    shop, _ = widget_shop(session, storefront_origins=["https://custom-preflight.example"])
    request_headers = {"Access-Control-Request-Method": "POST",
                       "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"}
    for origin, query in ((f"https://{shop.domain}", f"?shop={shop.uid}"), ("https://custom-preflight.example", "")):
        resp = wclient.options(f"/widget/v1/me/redemptions{query}", headers={"Origin": origin, **request_headers})
        assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Idempotency-Key" in resp.headers["Access-Control-Allow-Headers"]
    foreign = wclient.options("/widget/v1/me/redemptions", headers={"Origin": "https://evil.example", **request_headers})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    # Named shop, but the origin is another shop's: refused.
    other, _ = widget_shop(session)
    crossed = wclient.options(f"/widget/v1/me?shop={shop.uid}", headers={"Origin": f"https://{other.domain}",
                                                                         **request_headers})
    assert "Access-Control-Allow-Origin" not in crossed.headers


def test_unknown_widget_paths_and_wrong_methods_still_carry_cors_for_the_shops_origin(session, wclient):
    # A headless storefront calling a wrong URL or method must read the JSON error, not an
    # opaque CORS failure; the routing refusal happens before the blueprint's own hooks.
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    origin = f"https://{shop.domain}"
    for method, path in (("get", "/widget/v1/nope"), ("delete", "/widget/v1/me"), ("put", "/widget/v1/program")):
        resp = getattr(wclient, method)(path, headers=bearer(token(shop, secret, kari), Origin=origin))
        assert resp.status_code in (404, 405), (method, path)
        assert resp.get_json()["error"]["code"], (method, path)
        assert resp.headers["Access-Control-Allow-Origin"] == origin, (method, path)
        assert "Origin" in resp.headers["Vary"]
    foreign = wclient.get("/widget/v1/nope", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 404 and "Access-Control-Allow-Origin" not in foreign.headers
    elsewhere = wclient.get("/no-such-page", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers  # only the widget API's paths


@pytest.fixture(scope="module")
def tight_app(app):
    return create_app(test_config(WIDGET_RATE_LIMIT="3/minute", WIDGET_IP_RATE_LIMIT="6/minute",
                                  WIDGET_REDEEM_RATE_LIMIT="2/minute"))


@pytest.fixture
def tight(tight_app):
    with app_session(tight_app) as session:
        yield session, tight_app


def _client(flask_app, ip):
    return client_for(flask_app, ip)


def _is_429(resp) -> bool:
    return (resp.status_code == 429 and resp.get_json()["error"]["code"] == "too_many_requests"
            and 1 <= int(resp.headers["Retry-After"]) <= 61)  # one window, rounded up


def test_a_shopper_over_the_limit_gets_429_with_retry_after_from_any_ip(tight):
    session, flask_app = tight
    shop, secret = widget_shop(session)
    kari, ola = shopper(session, shop), shopper(session, shop)
    headers = bearer(token(shop, secret, kari))
    for n in range(3):
        assert _client(flask_app, f"10.1.0.{n}").get("/widget/v1/me", headers=headers).status_code == 200
    assert _is_429(_client(flask_app, "10.1.0.9").get("/widget/v1/me", headers=headers))
    # Another shopper is not affected.
    assert _client(flask_app, "10.1.0.10").get("/widget/v1/me", headers=bearer(token(shop, secret, ola))).status_code == 200


def test_a_429_tells_the_shopper_in_their_language_how_long_to_wait(tight):
    session, flask_app = tight
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    headers = bearer(token(shop, secret, kari), **{"Accept-Language": "nb-NO"})
    client = _client(flask_app, "10.1.1.1")
    for _ in range(3):
        assert client.get("/widget/v1/me", headers=headers).status_code == 200
    blocked = client.get("/widget/v1/me", headers=headers)
    assert _is_429(blocked)
    wait = blocked.headers["Retry-After"]
    assert blocked.get_json()["error"]["message"] == f"For mange forsøk; vent {wait} s og prøv igjen."
    english = client.get("/widget/v1/me", headers=bearer(token(shop, secret, kari)))
    assert english.get_json()["error"]["message"].startswith("Too many requests (")


def test_one_ip_over_the_limit_gets_429_whoever_it_claims_to_be(tight):
    session, flask_app = tight
    shop, _ = widget_shop(session)
    client = _client(flask_app, "10.2.0.1")
    for _ in range(6):
        assert client.get(f"/widget/v1/program?shop={shop.uid}").status_code == 200
    blocked = client.get(f"/widget/v1/program?shop={shop.uid}", headers={"X-Forwarded-For": "1.2.3.4"})
    assert _is_429(blocked)
    assert _client(flask_app, "10.2.0.2").get(f"/widget/v1/program?shop={shop.uid}").status_code == 200


def test_an_ipv6_client_is_limited_by_its_64_network_not_by_each_address_in_it(tight):
    # One host holds a whole /64 (a home line, a VPS): rotating through its addresses must not
    # buy a fresh per-IP limit on every request, on /me (counted by hand) or any other route.
    session, flask_app = tight
    shop, _ = widget_shop(session)
    net = f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}"
    for n in range(6):
        path = "/widget/v1/program" if n % 2 else "/widget/v1/me"
        assert _client(flask_app, f"{net}::{n + 1:x}").get(f"{path}?shop={shop.uid}").status_code in (200, 401)
    assert _is_429(_client(flask_app, f"{net}:ffff:ffff:ffff:ffff").get(f"/widget/v1/program?shop={shop.uid}"))
    assert _is_429(_client(flask_app, f"{net}::abcd").get(f"/widget/v1/me?shop={shop.uid}"))
    neighbour = f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}::1"
    assert _client(flask_app, neighbour).get(f"/widget/v1/program?shop={shop.uid}").status_code == 200


def test_behind_one_trusted_proxy_each_forwarded_client_ip_has_its_own_limit(app):
    behind_lb = create_app(test_config(WIDGET_IP_RATE_LIMIT="2/minute", TRUSTED_PROXY_HOPS="1"))
    with app_session(behind_lb) as session:
        shop, _ = widget_shop(session)
        balancer = _client(behind_lb, "10.9.0.1")  # every request comes from the load balancer
        url = f"/widget/v1/program?shop={shop.uid}"
        for _ in range(2):
            assert balancer.get(url, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
        assert _is_429(balancer.get(url, headers={"X-Forwarded-For": "203.0.113.7"}))
        # Another shopper behind the same balancer is not blocked by the first one's requests.
        assert balancer.get(url, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
        # Only the hop the balancer added counts: a client-forged address before it is ignored.
        assert _is_429(balancer.get(url, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}))


def test_redemptions_have_their_own_tighter_limit(tight):
    session, flask_app = tight
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    headers = bearer(token(shop, secret, kari))
    for n in range(2):
        resp = _client(flask_app, f"10.3.0.{n}").post("/widget/v1/me/redemptions", json={"reward_id": 1},
                                                      headers={**headers, "Idempotency-Key": f"k{n}"})
        assert resp.status_code == 422  # not an available reward of this shop: counted, refused
    resp = _client(flask_app, "10.3.0.5").post("/widget/v1/me/redemptions", json={"reward_id": 1},
                                               headers={**headers, "Idempotency-Key": "k9"})
    assert _is_429(resp)


def test_the_429_carries_cors_headers_for_the_shops_origin(tight):
    session, flask_app = tight
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    headers = bearer(token(shop, secret, kari), Origin=f"https://{shop.domain}")
    client = _client(flask_app, "10.4.0.1")
    responses = [client.get("/widget/v1/me", headers=headers) for _ in range(4)]
    assert _is_429(responses[-1])
    assert responses[-1].headers["Access-Control-Allow-Origin"] == f"https://{shop.domain}"


def test_with_the_limit_storage_down_the_widget_still_answers_and_still_limits(app):
    # Nothing listens on port 1: every Redis call is refused at once.
    redis_down = create_app(test_config(REDIS_URL="redis://127.0.0.1:1/0", WIDGET_IP_RATE_LIMIT="2/minute"))
    with app_session(redis_down) as session:
        shop, _ = widget_shop(session)
        client = _client(redis_down, "10.5.0.1")
        answers = [client.get(f"/widget/v1/program?shop={shop.uid}").status_code for _ in range(3)]
    assert answers == [200, 200, 429]  # limited from this process's memory instead


def test_a_malformed_limit_setting_stops_the_app_naming_it():
    from app.config import ConfigError, load_config

    base = {"SECRET_KEY": "s" * 20, "APP_URL": "https://lojal.test",
            "TOKEN_ENCRYPTION_KEYS": test_config()["TOKEN_ENCRYPTION_KEYS"]}
    assert load_config(base)["WIDGET_RATE_LIMIT"] == "120/minute"
    with pytest.raises(ConfigError, match="WIDGET_REDEEM_RATE_LIMIT"):
        load_config({**base, "WIDGET_REDEEM_RATE_LIMIT": "lots"})


def test_only_the_widgets_limited_routes_pay_for_the_limiter(monkeypatch, session):
    # Webhooks, health checks, the console: no widget limit applies, so Flask-Limiter's hooks are
    # skipped for them (as for GET /me, which counts its limits itself); the rest still runs them.
    from flask_limiter import Limiter

    checks = []
    original = Limiter._check_request_limit
    monkeypatch.setattr(Limiter, "_check_request_limit",
                        lambda self, *args, **kwargs: (checks.append(1), original(self, *args, **kwargs))[1])
    counted = create_app(test_config())
    with app_session(counted) as counted_session:
        shop, _ = widget_shop(counted_session)
        client = _client(counted, "10.6.0.1")

        def limiter_checks(path: str) -> int:
            before = len(checks)
            client.get(path)
            return len(checks) - before

        assert limiter_checks("/healthz") == 0
        assert limiter_checks("/shopify/webhooks") == 0  # 405: a GET, but answered without the limiter
        assert limiter_checks(f"/widget/v1/program?shop={shop.uid}") == 1


# --- Shopify app proxy: the shopper's IP from Shopify's X-Forwarded-For, once the signature holds ---

@pytest.fixture(scope="module")
def proxy_tight_app(app):
    return create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush", WIDGET_RATE_LIMIT="100/minute",
                                  WIDGET_IP_RATE_LIMIT="6/minute", WIDGET_PROXY_IP_RATE_LIMIT="3/minute",
                                  WIDGET_PROXY_GUEST_RATE_LIMIT="8/minute"))


@pytest.fixture
def proxied(proxy_tight_app):
    with app_session(proxy_tight_app) as session:
        shop, _ = widget_shop(session, platform="shopify")
        shop.domain = f"proxy-{shop.uid}.myshopify.com"
        make_customer(session, shop, platform_customer_id="7001")
        session.commit()
        # Every app-proxy request reaches the app from one of Shopify's servers.
        yield shop, _client(proxy_tight_app, _random_ip()), session


def _random_ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def _via_proxy(client, shop, path: str, shopper_ip: str, customer_id: str = "", **headers):
    return client.get(f"/widget/v1/{path}?{proxy_query(shop.domain, customer_id)}",
                      headers={"X-Forwarded-For": shopper_ip, **headers})


def test_two_app_proxy_guests_with_different_forwarded_ips_each_get_their_own_allowance(proxied):
    shop, shopify, _ = proxied
    guest, other_guest = _random_ip(), _random_ip()
    for _ in range(3):  # WIDGET_PROXY_IP_RATE_LIMIT: 3/minute
        assert _via_proxy(shopify, shop, "program", guest).status_code == 200
    assert _is_429(_via_proxy(shopify, shop, "program", guest))
    assert _via_proxy(shopify, shop, "program", other_guest).status_code == 200
    # GET /me counts itself (one script call) against the same per-IP counter: a guest is 401, counted.
    assert _via_proxy(shopify, shop, "me", other_guest).status_code == 401
    assert _via_proxy(shopify, shop, "me", other_guest).status_code == 401
    assert _is_429(_via_proxy(shopify, shop, "me", other_guest))
    assert _is_429(_via_proxy(shopify, shop, "program", other_guest))


def test_an_over_limit_app_proxy_shopper_gets_429_with_retry_after_whatever_it_puts_before_shopifys_entry(proxied):
    shop, shopify, _ = proxied
    nora_ip = _random_ip()
    for _ in range(3):
        assert _via_proxy(shopify, shop, "me", nora_ip, "7001").status_code == 200
    assert _is_429(_via_proxy(shopify, shop, "me", nora_ip, "7001"))
    # A client-sent X-Forwarded-For reaches us with Shopify's entry appended: only that one counts.
    assert _is_429(_via_proxy(shopify, shop, "me", f"{_random_ip()}, {nora_ip}", "7001"))
    assert _is_429(_via_proxy(shopify, shop, "program", f"{_random_ip()}, {nora_ip}"))
    assert _via_proxy(shopify, shop, "me", f"{nora_ip}, {_random_ip()}", "7001").status_code == 200


def test_a_forged_app_proxy_requests_forwarded_for_is_ignored(proxied):
    shop, shopify, _ = proxied
    forger, claimed = _client(shopify.application, _random_ip()), _random_ip()
    bad = proxy_query(shop.domain, "", secret="not-hush")
    for _ in range(6):  # unsigned: the socket's IP counts (WIDGET_IP_RATE_LIMIT, 6/minute), whatever it claims
        assert forger.get(f"/widget/v1/program?{bad}", headers={"X-Forwarded-For": _random_ip()}).status_code == 401
    assert _is_429(forger.get(f"/widget/v1/me?{bad}", headers={"X-Forwarded-For": _random_ip()}))
    for _ in range(4):
        assert forger.get(f"/widget/v1/program?{bad}", headers={"X-Forwarded-For": claimed}).status_code == 429
    # ... and the address it claimed kept its whole allowance through the real proxy.
    assert [_via_proxy(shopify, shop, "program", claimed).status_code for _ in range(3)] == [200, 200, 200]


def test_app_proxy_guests_of_one_shop_share_a_per_shop_ceiling(proxied):
    shop, shopify, session = proxied
    for _ in range(8):  # WIDGET_PROXY_GUEST_RATE_LIMIT: 8/minute, each guest well within its own limit
        assert _via_proxy(shopify, shop, "program", _random_ip()).status_code == 200
    assert _is_429(_via_proxy(shopify, shop, "program", _random_ip()))
    assert _is_429(_via_proxy(shopify, shop, "me", _random_ip()))
    # Signed-in shoppers are not guests, and another shop's guests have their own ceiling.
    assert _via_proxy(shopify, shop, "me", _random_ip(), "7001").status_code == 200
    other, _ = widget_shop(session, platform="shopify")
    other.domain = f"proxy-{other.uid}.myshopify.com"
    session.commit()
    assert _via_proxy(shopify, other, "program", _random_ip()).status_code == 200


def test_a_guest_over_its_own_limit_does_not_use_up_the_shops_guest_ceiling(proxied):
    # The limits stop at the first one exceeded: the refused requests are not counted further on.
    shop, shopify, _ = proxied
    abuser = _random_ip()
    for path in ("program", "me") * 5:  # 3 counted (WIDGET_PROXY_IP_RATE_LIMIT), 7 refused
        _via_proxy(shopify, shop, path, abuser)
    assert [_via_proxy(shopify, shop, "program", _random_ip()).status_code for _ in range(5)] == [200] * 5


def test_a_cached_program_answer_through_the_proxy_still_counts(proxied):
    shop, shopify, _ = proxied
    guest = _random_ip()
    first = _via_proxy(shopify, shop, "program", guest)
    etag = first.headers["ETag"]
    for _ in range(2):
        assert _via_proxy(shopify, shop, "program", guest, **{"If-None-Match": etag}).status_code == 304
    assert _is_429(_via_proxy(shopify, shop, "program", guest, **{"If-None-Match": etag}))


def test_behind_a_trusted_load_balancer_the_shopper_is_the_entry_shopify_added(app):
    # Shopify appends the shopper's address, the load balancer Shopify's: TRUSTED_PROXY_HOPS + 1 from the right.
    behind_lb = create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush", TRUSTED_PROXY_HOPS="1",
                                       WIDGET_PROXY_IP_RATE_LIMIT="2/minute"))
    with app_session(behind_lb) as session:
        shop, _ = widget_shop(session, platform="shopify")
        shop.domain = f"proxy-{shop.uid}.myshopify.com"
        session.commit()
        balancer, guest = _client(behind_lb, "10.9.0.1"), _random_ip()
        for _ in range(2):
            assert _via_proxy(balancer, shop, "program", f"{guest}, {_random_ip()}").status_code == 200
        assert _is_429(_via_proxy(balancer, shop, "program", f"{_random_ip()}, {guest}, {_random_ip()}"))
        assert _via_proxy(balancer, shop, "program", f"{_random_ip()}, {_random_ip()}").status_code == 200


def test_a_malformed_app_proxy_limit_setting_stops_the_app_naming_it():
    from app.config import ConfigError, load_config

    base = {"SECRET_KEY": "s" * 20, "APP_URL": "https://lojal.test",
            "TOKEN_ENCRYPTION_KEYS": test_config()["TOKEN_ENCRYPTION_KEYS"]}
    assert load_config(base)["WIDGET_PROXY_IP_RATE_LIMIT"] == "600/minute"
    assert load_config(base)["WIDGET_PROXY_GUEST_RATE_LIMIT"] == "10000/minute"
    for setting in ("WIDGET_PROXY_IP_RATE_LIMIT", "WIDGET_PROXY_GUEST_RATE_LIMIT"):
        with pytest.raises(ConfigError, match=setting):
            load_config({**base, setting: "lots"})


def test_me_through_the_proxy_counts_all_its_limits_in_one_redis_call(proxied, monkeypatch):
    from widgets.hardening import _READ_LIMITS

    shop, shopify, _ = proxied
    limits = shopify.application.extensions[_READ_LIMITS]
    _via_proxy(shopify, shop, "me", _random_ip())  # the script is loaded into Redis on its first use
    calls = []
    if limits.redis is not None:  # without REDIS_URL the limits are kept in memory: no call at all
        real = limits.redis.execute_command
        monkeypatch.setattr(limits.redis, "execute_command", lambda *args, **kw: (calls.append(args[0]),
                                                                                   real(*args, **kw))[1])
    assert _via_proxy(shopify, shop, "me", _random_ip()).status_code == 401  # a guest: per IP and per shop
    assert _via_proxy(shopify, shop, "me", _random_ip(), "7001").status_code == 200  # per IP and per shopper
    assert calls == (["EVALSHA", "EVALSHA"] if limits.redis is not None else [])
