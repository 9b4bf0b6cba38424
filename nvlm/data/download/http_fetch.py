"""Resumable HTTP download to a `.part` file (HTTP Range), standard library only."""

from __future__ import annotations

import errno
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nvlm import __version__
from nvlm.errors import RunFailed
from nvlm.outputs import disk_full, is_disk_full

_CHUNK = 1 << 20
_NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)


class Unreachable(RunFailed):
    """The host could not be reached at all (no name resolution, no route, refused, timed
    out): on a cluster node this usually means the machine has no network."""

    def __init__(self, url: str, why: str, resolved: bool) -> None:
        self.host = urllib.parse.urlsplit(url).netloc or url
        self.why = why
        self.resolved = resolved  # False: the name did not resolve (no DNS: offline)
        super().__init__(f"cannot reach {self.host} ({why})")


def _unreachable(reason: object) -> tuple[str, bool] | None:
    """(why, resolved) when `reason` means the host cannot be reached, else None."""
    if isinstance(reason, socket.gaierror):
        return "its name does not resolve", False
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(reason, TimeoutError | socket.timeout):
        return "connection timed out", True
    if isinstance(reason, OSError) and reason.errno in _NO_ROUTE:
        return "network unreachable", True
    return None


def fetch(
    url: str,
    part: Path,
    *,
    timeout: float = 60.0,
    on_bytes: Callable[[int, int | None], None] | None = None,
) -> None:
    """Download `url` into `part`, continuing from its current size if it exists.

    A server that answers a Range request with 200 (no range support) restarts the file; 416
    means there is nothing left to fetch (the caller's checksum decides if the file is right).
    `on_bytes(done, total)` reports progress.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"nvlm/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return
        raise RunFailed(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if (unreachable := _unreachable(reason)) is not None:
            raise Unreachable(url, *unreachable) from None
        raise RunFailed(f"download of {url} failed: {reason} (re-run to resume)") from None
    with response:
        resumed = have and response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        done = have if resumed else 0
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while block := response.read(_CHUNK):
                    out.write(block)
                    done += len(block)
                    if on_bytes is not None:
                        on_bytes(done, total)
        except (urllib.error.URLError, OSError) as exc:
            if is_disk_full(exc):
                # The bytes fetched so far would only keep the disk full: they go.
                part.unlink(missing_ok=True)
                raise disk_full(part, done, needed=total) from exc
            raise RunFailed(
                f"download of {url} broke off at {done} bytes: {exc} (re-run to resume)"
            ) from None
    if total is not None and done < total:
        raise RunFailed(f"download of {url} ended at {done} of {total} bytes (re-run to resume)")
