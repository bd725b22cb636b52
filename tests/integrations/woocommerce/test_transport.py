"""DNS rebinding: the store client connects only to the address that passed the check."""
from __future__ import annotations

import socket

import pytest

from integrations.base import TransientPlatformError
from integrations.woocommerce.client import call
from tests.integrations.woocommerce.wc_support import make_wc_shop

PUBLIC = "93.184.216.34"


def test_a_host_that_rebinds_to_loopback_after_the_check_is_still_called_at_the_checked_address(
        session, monkeypatch):
    shop = make_wc_shop(session)
    session.commit()
    host = shop.domain.removeprefix("https://")
    real_getaddrinfo = socket.getaddrinfo
    answers = iter([PUBLIC])  # the first lookup (the check) is public, every later one loopback

    def rebinding(name, port, *args, **kwargs):
        if name == host:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "127.0.0.1"), port))]
        return real_getaddrinfo(name, port, *args, **kwargs)

    connected = []

    def connect(sock, address):
        connected.append(address[:2])
        raise ConnectionRefusedError("stub: no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket.socket, "connect", connect)
    with pytest.raises(TransientPlatformError):
        call(shop, "get", "orders")
    assert connected == [(PUBLIC, 443)]


def test_a_host_that_does_not_resolve_is_not_left_to_the_request_to_resolve(session, monkeypatch):
    shop = make_wc_shop(session)
    session.commit()

    def fails(*args, **kwargs):
        raise socket.gaierror("stub: SERVFAIL")

    monkeypatch.setattr(socket, "getaddrinfo", fails)
    with pytest.raises(TransientPlatformError, match="does not resolve"):
        call(shop, "get", "orders")


def _self_signed(tmp_path, name: str):
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_store(tmp_path):
    """A real TLS server on 127.0.0.1 with a certificate for shop.example.com; records SNI and Host."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert_file, key_file = _self_signed(tmp_path, "shop.example.com")
    seen: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen["host"] = self.headers["Host"]
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert_file, seen
    server.shutdown()
    server.server_close()


def test_the_pinned_connection_keeps_the_host_name_for_sni_host_header_and_certificate(tls_store):
    from integrations.woocommerce.transport import pinned_session

    port, ca_file, seen = tls_store
    url = f"https://shop.example.com:{port}"
    response = pinned_session(url, "127.0.0.1").get(f"{url}/wp-json/wc/v3/orders", verify=ca_file, timeout=5)
    assert response.status_code == 200
    assert seen == {"sni": "shop.example.com", "host": f"shop.example.com:{port}"}


def test_the_pinned_connection_still_refuses_a_certificate_for_another_name(tls_store):
    import requests

    from integrations.woocommerce.transport import pinned_session

    port, ca_file, _ = tls_store
    url = f"https://other.example.com:{port}"
    with pytest.raises(requests.exceptions.SSLError):
        pinned_session(url, "127.0.0.1").get(f"{url}/", verify=ca_file, timeout=5)


def test_the_pinned_session_sends_to_no_other_host(tls_store):
    import requests

    from integrations.woocommerce.transport import pinned_session

    port, ca_file, seen = tls_store
    with pytest.raises(requests.ConnectionError, match="another host"):
        pinned_session("https://shop.example.com", "127.0.0.1").get(f"https://evil.example.com:{port}/",
                                                                      verify=ca_file, timeout=5)
    assert seen == {}


def test_an_oversized_store_answer_is_refused_instead_of_read_into_memory(session, store):
    from integrations.base import PermanentPlatformError
    from integrations.woocommerce import client
    from tests.integrations.woocommerce.wc_support import api_url

    shop = make_wc_shop(session)
    session.commit()
    store.get(api_url(shop, "orders"), body=b"[" + b" " * client.MAX_RESPONSE_BYTES + b"]",
              content_type="application/json")
    with pytest.raises(PermanentPlatformError, match="larger than"):
        call(shop, "get", "orders")


def test_plain_http_is_refused_for_a_public_store_even_with_the_development_flag(app, store):
    from app import create_app
    from app.extensions import db
    from integrations.base import PermanentPlatformError
    from tests.conftest import test_config

    dev = create_app(test_config(WOOCOMMERCE_ALLOW_HTTP=True))
    with dev.app_context():
        shop = make_wc_shop(db.session)
        shop.domain = shop.domain.replace("https://", "http://")  # resolves to a public address
        db.session.commit()
        store.get(f"{shop.domain}/wp-json/wc/v3/orders", json=[])
        try:
            with pytest.raises(PermanentPlatformError, match="plain http"):
                call(shop, "get", "orders")
            assert len(store.calls) == 0  # the keys and the store's data never crossed the internet in clear
        finally:
            db.session.rollback()
            db.session.remove()
