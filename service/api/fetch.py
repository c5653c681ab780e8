"""Fetching remove.bg's `image_url` without becoming a way into the network we run in.

Every hop (the URL and each redirect, followed by hand) is checked: http(s) only, no user info,
the host resolved here and every address it resolves to must be public
(`security.check_address`). The connection then goes to the address that was checked, with the
original `Host` header (and TLS SNI / certificate check on the host name), so a second DNS answer
cannot swap in an internal address (DNS rebinding). The body is streamed and cut off at the size
limit; the whole fetch, redirects included, has one time limit. No proxies or .netrc from the
environment.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass

import httpx

from ..errors import ImageUrlFailed, ImageUrlRefused, PayloadTooLarge
from ..security import AddressRefused, check_address

log = logging.getLogger("cutout.fetch")

DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "cutout-image-fetch/1"


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout_s: float
    max_redirects: int = 3
    allow_loopback: bool = False  # tests only


async def fetch_image(url: str, policy: FetchPolicy) -> bytes:
    try:  # wait_for, not asyncio.timeout: that one is Python 3.11+, and we support 3.10
        return await asyncio.wait_for(_fetch(url, policy), policy.timeout_s)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
        raise ImageUrlFailed(
            f"image_url took longer than {policy.timeout_s:g} s to download") from None


async def _fetch(url: str, policy: FetchPolicy) -> bytes:
    timeout = httpx.Timeout(policy.timeout_s)
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout,
                                 headers={"User-Agent": USER_AGENT, "Accept": "image/*"}) as client:
        target = _parse(url)
        for hop in range(policy.max_redirects + 1):
            response = await _connect(client, target, await _resolve(target,
                                                                     policy.allow_loopback))
            try:
                if response.is_redirect:
                    if hop == policy.max_redirects:
                        raise ImageUrlFailed(
                            f"image_url redirected more than {policy.max_redirects} times")
                    target = _parse(str(target.join(response.headers.get("location", ""))))
                    continue
                if response.status_code != 200:
                    raise ImageUrlFailed(f"image_url answered HTTP {response.status_code}")
                return await _read_limited(response, policy.max_bytes)
            finally:
                await response.aclose()
    raise ImageUrlFailed("image_url could not be fetched")  # unreachable


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ImageUrlRefused("image_url is not a valid URL") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise ImageUrlRefused("image_url must be an http or https URL")
    if not parsed.host:
        raise ImageUrlRefused("image_url has no host")
    if parsed.userinfo:
        raise ImageUrlRefused("image_url must not contain user credentials")
    return parsed


async def _resolve(url: httpx.URL, allow_loopback: bool) -> list[str]:
    """The addresses to try, in the resolver's order; every address the host resolves to must
    be allowed, or none is used."""
    host = url.host
    port = url.port or DEFAULT_PORTS[url.scheme]
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ImageUrlFailed("image_url's host name does not resolve") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ImageUrlFailed("image_url's host name does not resolve")
    try:
        return [str(check_address(a, allow_loopback)) for a in addresses]
    except AddressRefused as exc:
        log.info("image_url refused: %s", exc)
        raise ImageUrlRefused(
            "image_url must point to a public address (not loopback, private, link-local or "
            "metadata ranges)") from None


async def _connect(client: httpx.AsyncClient, url: httpx.URL,
                   addresses: list[str]) -> httpx.Response:
    """The response headers from the first checked address that accepts the connection."""
    failure = "no address"
    for address in addresses:
        try:
            return await client.send(_pinned_request(client, url, address), stream=True)
        except httpx.ConnectError as exc:
            failure = type(exc).__name__
            continue
        except httpx.HTTPError as exc:
            raise ImageUrlFailed(
                f"image_url could not be fetched: {type(exc).__name__}") from None
    raise ImageUrlFailed(f"image_url could not be fetched: {failure}")


def _pinned_request(client: httpx.AsyncClient, url: httpx.URL, address: str) -> httpx.Request:
    """A request to the checked address, with the URL's host in `Host` and TLS SNI."""
    port = url.port or DEFAULT_PORTS[url.scheme]
    host_header = url.host if url.port is None else f"{url.host}:{url.port}"
    if ":" in url.host and url.port is None:
        host_header = f"[{url.host}]"
    elif ":" in url.host:
        host_header = f"[{url.host}]:{url.port}"
    pinned = url.copy_with(host=address, port=port)
    return client.build_request("GET", pinned, headers={"Host": host_header},
                                extensions={"sni_hostname": url.host})


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"image_url's image is {int(declared)} bytes, over the limit of "
                              f"{max_bytes} bytes (CUTOUT_IMAGE_URL_MAX_BYTES)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: a gzip bomb is cut off too
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"image_url's image is over the limit of {max_bytes} bytes "
                                  "(CUTOUT_IMAGE_URL_MAX_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)
