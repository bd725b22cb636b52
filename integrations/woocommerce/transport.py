"""Outbound HTTP to a store, pinned to the address that was vetted (no DNS rebinding).

The store's host is resolved once (`vet_address`): every address must be public (unless the
development flag allows local stores) and the connection then goes to that address only, while
the Host header, TLS SNI and certificate verification keep the real host name. Without the pin,
requests would resolve the name again, and a host could answer a public address to the check
and 127.0.0.1 or 169.254.169.254 to the request.

The `woocommerce` package sends through the module-level `requests.request` (a fresh Session
per call, no adapter to mount), so `PinnedStoreAPI` overrides its one sending method to use a
Session with `PinnedAdapter`; URL building and authentication stay the package's.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
from json import dumps
from time import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection
from woocommerce import API
from woocommerce.oauth import OAuth

from integrations.base import PermanentPlatformError, TransientPlatformError


def vet_address(url: str, *, allow_local: bool = False) -> str:
    """The one address of the store's host we will connect to; refuses non-public ones (SSRF)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]
    except OSError:
        # Nothing to pin: letting the request resolve again would reopen the rebinding hole.
        raise TransientPlatformError(f"store host {host} does not resolve") from None
    if not addresses:
        raise TransientPlatformError(f"store host {host} does not resolve")
    public = [_is_public(a) for a in addresses]
    if parts.scheme != "https" and any(public):
        # Plain http (development flag) only to this machine or its network: over the internet
        # the key, the OAuth-signed requests and the store's customer data would travel in clear.
        raise PermanentPlatformError(f"store {host} is plain http on a public address; refusing to call it")
    if not allow_local and not all(public):
        raise PermanentPlatformError(f"store host {host} resolves to a non-public address; refusing to call it")
    return addresses[0]


# IPv6 forms that carry an IPv4 address a gateway connects to (Python's is_global looks only at
# the IPv6 address): NAT64's well-known prefix, whose last 32 bits are the IPv4 address; its
# local-use prefix and the deprecated IPv4-compatible form are never a public store's.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NOT_PUBLIC_V6 = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("::/96"))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NOT_PUBLIC_V6):
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None and not embedded.is_global:
            return False
    return True


class _Pinned:
    """A urllib3 connection whose socket goes to `pinned_address`; `host` (Host header, SNI,
    certificate name) stays the URL's host."""

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_address = pinned_address

    def _new_conn(self) -> socket.socket:
        try:
            return urllib3_connection.create_connection(
                (self.pinned_address, self.port), self.timeout,
                source_address=self.source_address, socket_options=self.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """Sends only to `host`, connecting to `address` (extra pool kwargs reach the connection)."""

    def __init__(self, host: str, address: str) -> None:
        self.pinned_host, self.pinned_address = host, address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_PinnedHTTPPool, pinned_address=self.pinned_address),
            "https": functools.partial(_PinnedHTTPSPool, pinned_address=self.pinned_address),
        }

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if urlsplit(request.url).hostname != self.pinned_host:
            raise requests.ConnectionError(f"refusing a request to another host than {self.pinned_host}")
        return super().get_connection_with_tls_context(request, verify, proxies, cert)


def pinned_session(url: str, address: str) -> requests.Session:
    session = requests.Session()
    adapter = PinnedAdapter(urlsplit(url).hostname or "", address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PinnedStoreAPI(API):
    """woocommerce.API sending through a pinned Session (its `__request`, with `session.request`)."""

    def __init__(self, *args: Any, session: requests.Session, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session

    def _API__request(self, method, endpoint, data, params=None, **kwargs):  # noqa: N802 (the package's name)
        params = {} if params is None else params
        url = self._API__get_url(endpoint)
        headers = {"user-agent": self.user_agent, "accept": "application/json"}
        auth = None
        if self.is_ssl and not self.query_string_auth:
            auth = HTTPBasicAuth(self.consumer_key, self.consumer_secret)
        elif self.is_ssl:
            params.update({"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret})
        else:
            url = OAuth(url=f"{url}?{urlencode(params)}", consumer_key=self.consumer_key,
                        consumer_secret=self.consumer_secret, version=self.version, method=method,
                        oauth_timestamp=kwargs.pop("oauth_timestamp", int(time()))).get_oauth_url()
        if data is not None:
            data = dumps(data, ensure_ascii=False).encode("utf-8")
            headers["content-type"] = "application/json;charset=utf-8"
        return self.session.request(method=method, url=url, verify=self.verify_ssl, auth=auth, params=params,
                                    data=data, timeout=self.timeout, headers=headers, **kwargs)
