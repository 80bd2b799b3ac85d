"""Where a webhook may point: hosts that resolve only to public addresses, so an admin
(or a DNS record changed later) cannot aim deliveries at the gateway's own network,
loopback, link-local metadata services or private ranges (server-side request
forgery). Checked when a webhook is created and again before every delivery."""

import asyncio
import ipaddress
import socket


class AddressRefused(Exception):
    """The host does not resolve, or resolves to an address deliveries may not reach."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, private, link-local, shared (CGNAT), reserved and
    # documentation ranges; multicast is global yet no place for an HTTP request.
    return ip.is_global and not ip.is_multicast


async def resolve_allowed(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`; AddressRefused when it does not resolve
    or (unless `allow_private`) any of its addresses is not public: one private answer
    among public ones is how DNS rebinding slips through."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(f"{host} does not resolve ({error})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        private = [a for a in addresses if not is_public_address(a)]
        if private:
            raise AddressRefused(
                f"{host} resolves to {private[0]}, a loopback, private or link-local address"
            )
    return addresses
