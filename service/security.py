"""Who may call, and where `image_url` may point.

`ApiKeys`: the accepted `X-Api-Key` values (settings and/or a file), compared in constant time.
`check_address`: the address policy for fetching `image_url`: only public unicast addresses, so
the service cannot be used to reach the network it runs in (loopback, private, link-local and
cloud metadata, CGNAT, multicast, reserved, IPv6 ULA / link-local, IPv4 embedded in IPv6).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from .errors import ApiKeyInvalid, ApiKeyMissing

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ApiKeys:
    """The accepted keys. Empty: authentication is off. Keys are kept as SHA-256 digests and
    compared with `hmac.compare_digest` against every key, so timing tells nothing about them."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(key) for key in keys if key]

    @classmethod
    def from_settings(cls, keys: Iterable[str], file: Path | None) -> ApiKeys:
        keys = list(keys)
        if file is not None:
            for line in file.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, presented: str | None) -> None:
        """Raises 401 when no key was sent, 403 when it is not one of ours."""
        if not self.enabled:
            return
        if not presented:
            raise ApiKeyMissing("an API key is required: send it in the X-Api-Key header")
        digest = _digest(presented)
        matched = False
        for known in self._digests:  # no early exit: the same work whichever key matches
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise ApiKeyInvalid("the API key is not valid")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


# ---- image_url address policy ------------------------------------------------------------------
# Ranges refused even where Python's `is_global` would let them through (or differs by version).
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "2001::/32", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class AddressRefused(ValueError):
    """`image_url` points at an address the service must not reach."""


def check_address(address: str | IPAddress, allow_loopback: bool = False) -> IPAddress:
    """The address if it is public unicast, else AddressRefused. `allow_loopback` is for tests
    (a local server) only."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if allow_loopback and any(ip in net for net in _LOOPBACK if net.version == ip.version):
        return ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        raise AddressRefused(f"{ip} is an IPv4-mapped address")
    refused = any(ip in net for net in _REFUSED_NETWORKS if net.version == ip.version)
    if refused or not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback \
            or ip.is_link_local or ip.is_private or ip.is_unspecified:
        raise AddressRefused(f"{ip} is not a public address")
    return ip
