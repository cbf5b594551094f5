"""NetworkTransport over plain TCP.

Mirrors: tcp_transport.go (TCPStreamLayer, NewTCPTransport).
Read before: net_transport.py (what runs on top of these connections).

A node tells its peers where to find it by the address it *advertises*:
``local_addr()``, which goes into the cluster configuration. The address a
socket is bound to is not always one a peer can dial: ``0.0.0.0`` means "every
interface of this machine" and reaches nobody. So, as in Go, a transport
bound to an unspecified address needs an explicit ``advertise`` address, and
``new_tcp_transport`` refuses to start without one.

Usage, inside a running event loop (binding needs one)::

    trans = await new_tcp_transport("127.0.0.1:7000")
    ...
    trans.close()
    await trans.wait_closed()

Differs: the check runs before binding, so a refused address is never
listened on, even briefly (Go binds, checks, then closes). Connections are
accepted with ``loop.sock_accept`` on our own listening socket rather than
``asyncio.start_server``: start_server runs its own accept loop and swallows
accept errors, and we want ``NetworkTransport.listen`` to see them and back
off as Go's does. ``advertise`` is a "host:port" string, not a net.Addr.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

from raft.errors import ConfigError, TransportError
from raft.net_frames import DEFAULT_MAX_FRAME_SIZE
from raft.net_transport import (
    CONN_BUFFER_SIZE,
    DEFAULT_MAX_POOL,
    DEFAULT_TIMEOUT,
    NetworkTransport,
    ServerAddressProvider,
    deadline,
)

LISTEN_BACKLOG = 128


class ErrNotAdvertisable(ConfigError):
    """The address peers would be told is one they cannot dial (Mirrors: errNotAdvertisable)."""

    message = "local bind address is not advertisable"


def split_host_port(address: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6-host]:port"; ConfigError if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"address {address!r}: write an IPv6 host in brackets, [::1]:port")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    """The inverse of ``split_host_port`` (Go: net.JoinHostPort)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_advertisable(host: str) -> bool:
    """False for the hosts that name no particular machine: empty, 0.0.0.0 and ::."""
    if not host:
        return False
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return True  # a host name: whether peers can resolve it is the operator's business


def free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct 127.0.0.1 ports that were free a moment ago, for tests and demos.

    The kernel picks them (bind to port 0); all sockets stay open until every
    port is chosen, so the ports differ. Another program may still take one
    before the caller binds it: good enough on a test machine, not a
    reservation. Differs: Go tests use port 0 directly; our nodes must know
    each other's addresses before they start, so we ask first.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class TCPStreamLayer:
    """Listens on a bound TCP socket and dials peers (Mirrors: TCPStreamLayer)."""

    def __init__(self, listener: socket.socket, advertise: str | None = None) -> None:
        self.listener = listener
        self.advertise = advertise

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        sock, _ = await loop.sock_accept(self.listener)
        try:
            return await asyncio.open_connection(sock=sock, limit=CONN_BUFFER_SIZE)
        except BaseException:
            sock.close()
            raise

    async def dial(self, address: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``address`` (Mirrors: Dial, net.DialTimeout)."""
        host, port = split_host_port(address)
        async with asyncio.timeout(deadline(timeout)):
            return await asyncio.open_connection(host, port, limit=CONN_BUFFER_SIZE)

    def addr(self) -> str:
        """The advertised address if there is one, else the bound one (Mirrors: Addr)."""
        if self.advertise is not None:
            return self.advertise
        host, port = self.listener.getsockname()[:2]
        return join_host_port(host, port)

    def close(self) -> None:
        self.listener.close()


async def new_tcp_transport(bind_addr: str, advertise: str | None = None, max_pool: int = DEFAULT_MAX_POOL,
                            timeout: float = DEFAULT_TIMEOUT, *, max_rpcs_in_flight: int = 0,
                            server_address_provider: ServerAddressProvider | None = None,
                            max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                            logger: logging.Logger | None = None) -> NetworkTransport:
    """Bind ``bind_addr`` and return a NetworkTransport serving on it.

    Mirrors: NewTCPTransport, NewTCPTransportWithConfig, NewTCPTransportWithLogger and newTCPTransport.

    ``bind_addr`` is "host:port"; port 0 picks a free port, and
    ``local_addr()`` then reports the real one. Raises ``ErrNotAdvertisable``
    when the address peers would be told is unspecified (no ``advertise`` and
    a bind host of 0.0.0.0, :: or empty; or an unspecified ``advertise``), and
    ``TransportError`` when the address cannot be bound.
    """
    host, port = split_host_port(bind_addr)
    if advertise is not None:
        advertise_host, advertise_port = split_host_port(advertise)
        if not is_advertisable(advertise_host) or advertise_port == 0:
            raise ErrNotAdvertisable(f"advertise address {advertise!r} is not advertisable")
    elif not is_advertisable(host):
        raise ErrNotAdvertisable(f"local bind address {bind_addr!r} is not advertisable: "
                                 "bind a specific address or give an advertise address")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise TransportError(f"cannot resolve bind address {bind_addr!r}: {err}") from err
    family, kind, proto, _, sockaddr = infos[0]
    if advertise is None and not is_advertisable(str(sockaddr[0])):
        raise ErrNotAdvertisable(f"local bind address {bind_addr!r} resolves to {sockaddr[0]}, "
                                 "which is not advertisable")
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind at once after a restart
        listener.bind(sockaddr)
        listener.listen(LISTEN_BACKLOG)
        listener.setblocking(False)
    except OSError as err:
        listener.close()
        raise TransportError(f"failed to bind {bind_addr}: {err}") from err
    stream = TCPStreamLayer(listener, advertise)
    return NetworkTransport(stream, max_pool=max_pool, timeout=timeout, max_rpcs_in_flight=max_rpcs_in_flight,
                            server_address_provider=server_address_provider, max_frame_size=max_frame_size,
                            logger=logger)
