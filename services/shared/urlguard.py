"""Outbound URLs a client chose (webhooks): never a way into the project's own network.

A service that POSTs to a URL its callers registered is a server-side request forgery (SSRF)
target: ``http://169.254.169.254/computeMetadata/v1/`` would hand out the service account's
tokens, ``http://10.1.2.3/`` would reach private services, and the delivery outcomes would
make a port scanner of it. :class:`UrlPolicy` refuses, with a reason:

- a scheme other than ``https`` (``http`` too off Cloud Run); a port other than 443 (and 80
  where ``http`` is allowed) unless ``allowed_ports`` lists it;
- the metadata server's names (``metadata.google.internal``, ``metadata.goog``,
  ``metadata``) and every name under ``.internal``;
- any address that is not global unicast: loopback (unless ``allow_loopback``: local mode
  only, any port), private (RFC 1918, ULA ``fc00::/7``), link-local (``169.254.0.0/16``,
  where the metadata server answers, and ``fe80::/10``), shared (``100.64.0.0/10``),
  unspecified, multicast, reserved and documentation ranges, and the same addresses wrapped
  in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64 ``64:ff9b::/96``).

It is checked twice. At registration (:meth:`UrlPolicy.check`: the URL, then every address
its host resolves to now) so the client hears why at once. And at send time by
:class:`GuardedTransport`, because a name may resolve elsewhere by then (DNS rebinding): the
transport resolves the host itself, checks every address, and connects to the address it
checked — the request keeps its ``Host`` header and TLS its server name (SNI), so
certificates are verified against the name as usual. Redirects are not followed (httpx's
default, kept), and no proxy from the environment is used.

The userinfo of a URL (``https://user:secret@host/``) is kept to call the receiver but never
shown: :func:`redact` drops it wherever a URL is answered or logged.

Why hand-written: which addresses are "inside" is the lesson here, and the policy (loopback
only as a local opt-in, ports, Cloud Run's https) is the project's. The Python packages
considered either wrap GET only and resolve through a public DNS server (``safehttpx``) or
are young single-maintainer wrappers (``drawbridge``, ``httpx-secure``). httpx has no public
hook for the connect step, so :class:`GuardedTransport` hands httpcore's connection pool (a
public httpcore API) a network backend of its own; a test checks that the connection goes
to the checked address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpcore
import httpx
from starlette.config import Config

from caplab.core.errors import SettingError
from services.shared.resilience import ResilienceError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]
"""``(host, port)`` -> the addresses the host resolves to."""

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
INTERNAL_SUFFIX = ".internal"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
RESOLVE_TIMEOUT = 5.0
"""Seconds a registration may spend resolving the webhook's host."""


class UnsafeUrl(ResilienceError):
    """The URL is refused by the policy: the call never left this process (so, like the other
    local refusals, it counts as neither success nor failure for the breaker)."""

    def __init__(self, url: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{redact(url)}: {reason}")


def redact(url: str) -> str:
    """``url`` without its userinfo (``https://user:secret@host/p`` -> ``https://host/p``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, port always explicit, no userinfo: what breakers and
    bulkheads are keyed by (one per receiving endpoint, never carrying a secret)."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return "<unparseable url>"
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}:{port}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IpAddress, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be called, or ``None`` when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_refusal(inner, allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address (the metadata server's range)"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_multicast or address.is_unspecified or not address.is_global:
        return f"{address} is not a public unicast address"
    return None


async def system_resolver(host: str, port: int) -> list[IpAddress]:
    """The addresses ``getaddrinfo`` gives for ``host`` (the machine's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def _ports(text: str) -> frozenset[int]:
    return frozenset(int(item) for item in text.split(",") if item.strip())


@dataclass(frozen=True)
class UrlPolicy:
    https_only: bool = True
    allow_loopback: bool = False
    """Local mode: loopback addresses, on any port, are allowed (the local webhook sink)."""
    allowed_ports: frozenset[int] = frozenset()
    """Ports allowed besides the scheme's own."""

    @classmethod
    def from_config(cls, config: Config) -> UrlPolicy:
        """``https`` only where Cloud Run's ``K_SERVICE`` is set;
        ``CAPLAB_OUTBOUND_ALLOW_LOOPBACK`` (``true``: set by ``caplab emulators env``, refused
        on Cloud Run, where loopback is the service itself) and
        ``CAPLAB_OUTBOUND_ALLOWED_PORTS`` (comma-separated)."""
        on_cloud_run = config("K_SERVICE", default=None) is not None
        allow_loopback = config("CAPLAB_OUTBOUND_ALLOW_LOOPBACK", cast=bool, default=False)
        if on_cloud_run and allow_loopback:
            raise SettingError(
                "CAPLAB_OUTBOUND_ALLOW_LOOPBACK must not be set on Cloud Run: loopback there is "
                "the service itself"
            )
        return cls(
            https_only=on_cloud_run,
            allow_loopback=allow_loopback,
            allowed_ports=config("CAPLAB_OUTBOUND_ALLOWED_PORTS", cast=_ports, default=""),
        )

    def check_text(self, url: str) -> tuple[str, int]:
        """The URL's host and port, after the checks that need no resolution (scheme and host
        name). Raises :class:`UnsafeUrl`."""
        try:
            parts: SplitResult = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise UnsafeUrl(url, f"not a valid URL ({error})") from error
        scheme = parts.scheme.lower()
        schemes = ("https",) if self.https_only else ("https", "http")
        if scheme not in schemes:
            raise UnsafeUrl(url, f"the scheme must be {' or '.join(schemes)}")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UnsafeUrl(url, "the URL names no host")
        if host in METADATA_NAMES or host.endswith(INTERNAL_SUFFIX):
            raise UnsafeUrl(url, f"{host} is an internal name (the metadata server's)")
        return host, port or DEFAULT_PORTS[scheme]

    def check_address(self, url: str, address: IpAddress, port: int) -> None:
        """Raises :class:`UnsafeUrl` unless ``address:port`` may be called."""
        reason = address_refusal(address, self.allow_loopback)
        if reason is not None:
            raise UnsafeUrl(url, reason)
        if port in self.ports or (self.allow_loopback and _unwrapped(address).is_loopback):
            return
        allowed = ", ".join(str(p) for p in sorted(self.ports))
        raise UnsafeUrl(url, f"port {port} is not allowed (allowed: {allowed})")

    @property
    def ports(self) -> frozenset[int]:
        """The standard ports of the allowed schemes, and the ports allowed besides."""
        standard = {443} if self.https_only else {443, 80}
        return frozenset(standard) | self.allowed_ports

    async def resolve(self, url: str, host: str, port: int, resolver: Resolver) -> list[IpAddress]:
        """Every address ``host`` resolves to, each checked; raises :class:`UnsafeUrl` when
        one is refused (a name with one private address among public ones is refused: the
        connection could go to any of them) or the name does not resolve."""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT):
                    addresses = await resolver(host, port)
            except (OSError, TimeoutError) as error:
                raise UnsafeUrl(url, f"{host} does not resolve") from error
        if not addresses:
            raise UnsafeUrl(url, f"{host} does not resolve")
        for address in addresses:
            self.check_address(url, address, port)
        return addresses

    async def check(self, url: str, resolver: Resolver = system_resolver) -> None:
        """The registration-time check: the URL's text, then every address its host resolves
        to now. Raises :class:`UnsafeUrl`."""
        host, port = self.check_text(url)
        await self.resolve(url, host, port, resolver)


def _unwrapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address):
        return _embedded_ipv4(address) or address
    return address


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows: the host is resolved here, checked,
    and the connection made to the checked address itself."""

    def __init__(self, policy: UrlPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        # httpcore exports it conditionally (anyio is always there: FastAPI needs it).
        self._inner = cast(httpcore.AsyncNetworkBackend, httpcore.AnyIOBackend())

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(f"//{host}:{port}", host, port, self._resolver)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl(path, "unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the policy applied to every request: the URL's text before
    anything is sent, the resolved addresses when a connection is opened (see the module
    docstring)."""

    def __init__(self, policy: UrlPolicy, resolver: Resolver = system_resolver) -> None:
        super().__init__()
        self.policy = policy
        # httpx's default pool limits, with the checking network backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(policy, resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_text(str(request.url))
        return await super().handle_async_request(request)


def guarded_client(
    policy: UrlPolicy, resolver: Resolver = system_resolver, timeout: float = 60.0
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for client-chosen URLs: checked transport, no redirects, no
    proxies or settings from the environment."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
