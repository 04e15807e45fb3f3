"""The outbound URL policy: which addresses, names, schemes and ports are refused; the
transport that resolves, checks and connects to the checked address; redaction.

Name resolution is a function the tests hand in (no DNS query leaves the machine), and the
only server ever connected to listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import AsyncIterator

import pytest

from services.shared.outbound import downstream_key, post_json
from services.shared.resilience import Downstreams
from services.shared.urlguard import (
    IpAddress,
    Resolver,
    UnsafeUrl,
    UrlPolicy,
    address_refusal,
    guarded_client,
    origin,
    redact,
)

REFUSED = [
    "127.0.0.1", "127.1.2.3", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",
    "169.254.169.254", "169.254.0.1", "fe80::1", "fd00::1", "fc00::1", "fd00:ec2::254",
    "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "240.0.0.1", "255.255.255.255",
    "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "2002:a00:1::", "64:ff9b::a9fe:a9fe",
]  # fmt: skip
ALLOWED = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", REFUSED)
def test_addresses_inside_any_network_are_refused(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text), allow_loopback=False) is not None


@pytest.mark.parametrize("text", ALLOWED)
def test_public_unicast_addresses_are_allowed(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text), allow_loopback=False) is None


def test_the_loopback_opt_in_opens_loopback_only() -> None:
    allowed = [a for a in REFUSED if address_refusal(ipaddress.ip_address(a), True) is None]
    assert allowed == ["127.0.0.1", "127.1.2.3", "::1"]


def resolver_of(table: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[IpAddress]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"{host} unknown")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


LOCAL = UrlPolicy(https_only=False)
CLOUD = UrlPolicy(https_only=True)


@pytest.mark.parametrize(
    ("policy", "url", "reason"),
    [
        (LOCAL, "http://metadata.google.internal/computeMetadata/v1/", "internal name"),
        (LOCAL, "http://METADATA.GOOGLE.INTERNAL./", "internal name"),
        (LOCAL, "http://metadata/", "internal name"),
        (LOCAL, "http://metadata.goog/", "internal name"),
        (LOCAL, "https://vm-1.us-central1-a.c.project.internal/", "internal name"),
        (LOCAL, "ftp://8.8.8.8/", "scheme"),
        (LOCAL, "http:///nohost", "no host"),
        (LOCAL, "http://8.8.8.8:99999/", "not a valid URL"),
        (CLOUD, "http://8.8.8.8/", "scheme must be https"),
        (LOCAL, "http://8.8.8.8:22/", "port 22"),
        (CLOUD, "https://8.8.8.8:80/", "port 80"),
        (LOCAL, "http://inside.example/", "10.0.0.7 is a private address"),
        (LOCAL, "http://mixed.example/", "10.0.0.8 is a private address"),
        (LOCAL, "http://nowhere.example/", "does not resolve"),
        (LOCAL, "http://user:secret@10.0.0.1/", "private"),
    ],
)
async def test_registration_check_refuses(policy: UrlPolicy, url: str, reason: str) -> None:
    """Names, schemes, ports and resolved addresses; one bad address among good ones is
    enough; the message never shows userinfo."""
    resolve = resolver_of(
        {"inside.example": ["10.0.0.7"], "mixed.example": ["8.8.8.8", "10.0.0.8"]}
    )
    with pytest.raises(UnsafeUrl, match=reason) as refused:
        await policy.check(url, resolve)
    assert "secret" not in str(refused.value)


async def test_registration_check_accepts_public_destinations() -> None:
    resolve = resolver_of({"hooks.example": ["8.8.8.8", "2001:4860:4860::8888"]})
    await LOCAL.check("http://hooks.example/x", resolve)
    await CLOUD.check("https://hooks.example/x", resolve)
    await UrlPolicy(allowed_ports=frozenset({8443})).check("https://8.8.8.8:8443/", resolve)
    await UrlPolicy(https_only=False, allow_loopback=True).check("http://127.0.0.1:8089/", resolve)


def test_policy_from_settings() -> None:
    from starlette.config import Config

    from caplab.core.errors import SettingError

    local = UrlPolicy.from_config(Config(environ={"CAPLAB_OUTBOUND_ALLOW_LOOPBACK": "true"}))
    assert local == UrlPolicy(https_only=False, allow_loopback=True)
    cloud = UrlPolicy.from_config(
        Config(environ={"K_SERVICE": "x", "CAPLAB_OUTBOUND_ALLOWED_PORTS": "8443, 9443"})
    )
    assert cloud == UrlPolicy(https_only=True, allowed_ports=frozenset({8443, 9443}))
    with pytest.raises(SettingError, match="CAPLAB_OUTBOUND_ALLOW_LOOPBACK"):
        UrlPolicy.from_config(
            Config(environ={"K_SERVICE": "x", "CAPLAB_OUTBOUND_ALLOW_LOOPBACK": "true"})
        )


@pytest.mark.parametrize(
    ("url", "redacted", "key"),
    [
        ("http://user:secret@h.example:8080/p?q=1", "http://h.example:8080/p?q=1",
         "http://h.example:8080"),
        ("https://token@H.Example/x", "https://H.Example/x", "https://h.example:443"),
        ("https://h.example/x", "https://h.example/x", "https://h.example:443"),
        ("http://u:p@[2001:db8::1]/", "http://[2001:db8::1]/", "http://[2001:db8::1]:80"),
    ],
)  # fmt: skip
def test_userinfo_never_leaves_in_urls_or_keys(url: str, redacted: str, key: str) -> None:
    assert redact(url) == redacted
    assert origin(url) == key
    assert downstream_key(url) == key


class Receiver:
    """An HTTP server on ``host`` (a loopback address) that records each request's head and
    answers 204."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.heads: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")), 0,
        )  # fmt: skip
        await reader.readexactly(length)
        self.heads.append(head)
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """Listening on 127.0.0.2, where no name resolves to by itself: a connection arrives only
    if the transport used the address the policy's resolver gave."""
    async with Receiver("127.0.0.2") as started:
        yield started


async def test_the_transport_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    """The name is resolved by the policy's resolver (``localhost`` -> 127.0.0.2 here, while
    the system would say 127.0.0.1) and the connection goes to that address; the request
    keeps the name in its Host header."""
    calls: list[str] = []
    resolve = resolver_of({"localhost": ["127.0.0.2"]}, calls)
    policy = UrlPolicy(https_only=False, allow_loopback=True)
    async with guarded_client(policy, resolve) as client:
        response = await client.post(f"http://localhost:{receiver.port}/x", content=b"{}")
    assert response.status_code == 204
    assert calls == ["localhost"]
    assert f"host: localhost:{receiver.port}".encode() in receiver.heads[0].lower()


async def test_a_name_rebound_to_a_refused_address_is_refused_at_send_time(
    receiver: Receiver,
) -> None:
    """Registered while it resolved to a public address, the name resolves to a refused one
    (loopback, in a policy without the opt-in) when the delivery is sent: refused before any
    connection, and the breaker counts it as neither success nor failure."""
    answers = [["8.8.8.8"], ["127.0.0.2"]]

    async def rebinding(host: str, port: int) -> list[IpAddress]:
        return [ipaddress.ip_address(a) for a in answers.pop(0)]

    policy = UrlPolicy(https_only=False, allowed_ports=frozenset({receiver.port}))
    url = f"http://rebind.example:{receiver.port}/x"
    await policy.check(url, rebinding)
    downstreams = Downstreams()
    async with guarded_client(policy, rebinding) as client:
        with pytest.raises(UnsafeUrl, match=re.escape("127.0.0.2 is a loopback address")):
            await post_json(client, downstreams, url, "event-1", {"a": 1})
    assert receiver.connections == 0
    breaker = downstreams[downstream_key(url)].breaker.counters
    assert (breaker.failures, breaker.successes) == (0, 0)


async def test_the_transport_checks_the_url_before_resolving() -> None:
    """Metadata names and refused schemes never reach the resolver."""
    calls: list[str] = []
    async with guarded_client(LOCAL, resolver_of({}, calls)) as client:
        for url in ("http://metadata.google.internal/computeMetadata/v1/", "ftp://x.example/"):
            with pytest.raises(UnsafeUrl):
                await client.post(url, content=b"{}")
    assert calls == []
