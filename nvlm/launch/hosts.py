"""Hosts and their slots (processes per host, normally GPUs per node), from `--hosts` or a file.

--hosts node1:8,node2:8

# --hostfile FILE: one host per line, Open MPI / Horovod style or host:slots
node1 slots=8
node2:8          # comments and blank lines are ignored
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from nvlm.errors import UserError

_NAME = r"[A-Za-z0-9_.\-\[\]]+"  # host names, IPv4 addresses
_COLON = re.compile(rf"^({_NAME}):(\d+)$")
_SLOTS = re.compile(rf"^({_NAME})\s+slots\s*=\s*(\d+)(\s+max[-_]slots\s*=\s*\d+)?$")


class Host(NamedTuple):
    name: str
    slots: int

    def __str__(self) -> str:
        return f"{self.name}:{self.slots}"


def parse_hosts(text: str) -> list[Host]:
    """'node1:8,node2:8' -> [Host('node1', 8), Host('node2', 8)]."""
    hosts = []
    for item in text.split(","):
        match = _COLON.match(item.strip())
        if not match:
            raise UserError(
                f"--hosts {text!r}: {item.strip()!r} is not host:slots "
                "(e.g. --hosts node1:8,node2:8)"
            )
        hosts.append(Host(match[1], int(match[2])))
    return _checked(hosts, "--hosts")


def read_hostfile(path: str | Path) -> list[Host]:
    """Hosts from a file of 'host slots=N' or 'host:N' lines ('#' starts a comment)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(
            f"hostfile {path} not found (give a file of 'host slots=N' lines)"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read hostfile {path}: {exc.strerror}") from None
    hosts = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _COLON.match(text) or _SLOTS.match(text)
        if not match:
            raise UserError(
                f"hostfile {path} line {number}: {text!r} is not 'host slots=N' or 'host:N'"
            )
        hosts.append(Host(match[1], int(match[2])))
    if not hosts:
        raise UserError(f"hostfile {path} lists no hosts (one 'host slots=N' per line)")
    return _checked(hosts, f"hostfile {path}")


def _checked(hosts: list[Host], where: str) -> list[Host]:
    seen = set()
    for host in hosts:
        if host.slots < 1:
            raise UserError(f"{where}: {host.name} has {host.slots} slots (give at least 1)")
        if host.name in seen:
            raise UserError(f"{where}: {host.name} is listed twice (give each host once)")
        seen.add(host.name)
    return hosts


def total_slots(hosts: Sequence[Host]) -> int:
    return sum(h.slots for h in hosts)


def hosts_arg(hosts: Sequence[Host]) -> str:
    """The -H argument of mpirun and horovodrun: 'node1:8,node2:8'."""
    return ",".join(str(h) for h in hosts)


def fill(hosts: Sequence[Host], processes: int) -> list[Host]:
    """The hosts that `processes` ranks occupy when slots fill in order (--map-by slot)."""
    used, left = [], processes
    for host in hosts:
        if left <= 0:
            break
        used.append(Host(host.name, min(host.slots, left)))
        left -= host.slots
    return used
