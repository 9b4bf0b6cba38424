"""Resumable HTTP download to a `.part` file (HTTP Range), standard library only."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nvlm import __version__
from nvlm.errors import RunFailed

_CHUNK = 1 << 20


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
            raise RunFailed(
                f"download of {url} broke off at {done} bytes: {exc} (re-run to resume)"
            ) from None
    if total is not None and done < total:
        raise RunFailed(f"download of {url} ended at {done} of {total} bytes (re-run to resume)")
