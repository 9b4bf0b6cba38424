"""Where nvlm may write, and how; how it reads the files it is given: the one owner of file I/O.

Rules every command follows (docs/reliability.md):
- an output never is, or contains, one of the command's inputs (`nvlm data vocab --input c.txt
  --out c.txt` would replace the corpus with the vocab);
- an existing output file is replaced only with `--overwrite` (git/rsync convention: refuse to
  clobber, say why);
- a file is written under a temporary name in its directory and renamed when complete, so a
  reader, or a rerun, sees it whole or not at all; a failed write leaves nothing behind;
- a full disk is one line naming the path and the space it needed, exit 1;
- a file nvlm reads (a config, a manifest, a SQuAD set, a checkpoint's config.json) that is
  missing, unreadable, not UTF-8 or not valid JSON/YAML is one line naming it, where (line,
  column) and the fix, exit 2 (`read_json`, `read_yaml`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from nvlm.errors import RunFailed, UserError


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def is_within(path: str | os.PathLike[str], parent: str | os.PathLike[str]) -> bool:
    """True when `path` is `parent` or lies below it (symlinks resolved)."""
    p, q = _resolved(path), _resolved(parent)
    return p == q or q in p.parents


def refuse_inputs(
    out: str | os.PathLike[str] | None,
    inputs: Mapping[str, str | os.PathLike[str] | Iterable | None],
    *,
    option: str = "--out",
) -> None:
    """Refuse an output that is, or contains, one of the inputs (`{"--data": path}`): writing
    or cleaning it would destroy what the command reads."""
    if out is None:
        return
    for name, value in inputs.items():
        values = value if isinstance(value, list | tuple | set) else [value]
        for given in values:
            if given is None or str(given) in ("", "-"):
                continue
            if is_within(given, out):
                where = "is" if _resolved(given) == _resolved(out) else "contains"
                raise UserError(
                    f"{option} {out} {where} the input {name} {given}: nvlm never writes over "
                    f"its inputs (choose another {option})"
                )


def check_output_file(
    path: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | Iterable | None] | None = None,
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """Check, before any work, that `path` may be written: not an input, not a directory, not
    an existing file unless `overwrite`, in a directory that exists or can be made and that is
    writable. Returns the path."""
    target = Path(path)
    refuse_inputs(target, inputs or {}, option=option)
    if target.is_dir():
        raise UserError(f"{option} {target} is a directory; give a file name (e.g. {target}/...)")
    if target.exists() and not overwrite:
        raise UserError(
            f"{option} {target} exists and nvlm does not overwrite files unless told "
            "(add --overwrite, or choose another path)"
        )
    check_writable_dir(target.parent if str(target.parent) else Path("."), option=option)
    return target


def check_writable_dir(directory: str | os.PathLike[str], *, option: str = "--out") -> None:
    """`directory` exists and is writable, or can be created: else one line (EACCES, a file in
    the way)."""
    d = Path(directory)
    probe = d
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{option} {directory}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(
            f"{option} {directory}: permission denied to write in {probe} "
            "(choose a directory you can write to)"
        )


def disk_full(
    path: str | os.PathLike[str], written: int | None = None, *, needed: int | None = None
) -> RunFailed:
    """The one-line failure for ENOSPC while writing `path`: `needed` is an estimate of the
    whole file's size where the writer can make one, else `written` a lower bound."""
    target = Path(path)
    probe = target.parent if str(target.parent) else Path(".")
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    free_text = "unknown" if free is None else _size(free)
    if needed:
        need = f"; it needs about {_size(needed)}"
    else:
        need = f"; it needed more than {_size(written)}" if written else ""
    return RunFailed(
        f"no space left on the device writing {target} ({free_text} free{need}); "
        "free some space or choose another output, then re-run"
    )


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name next to `path` to write to; renamed to `path` when the block completes,
    removed when it raises. ENOSPC becomes `disk_full`."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else None
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full(target, written) from exc
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` whole to `path` (temporary name, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: object) -> None:
    """`obj` as indented JSON with a final newline, written whole (`write_bytes`)."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def cache_home() -> Path:
    """nvlm's per-user cache directory: $XDG_CACHE_HOME/nvlm, else ~/.cache/nvlm (the measured
    peak, SQuAD evaluation features). Everything in it can be deleted at any time."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nvlm"


def _label(path: str | os.PathLike[str], what: str) -> str:
    return f"{what} {path}" if what else str(path)


def read_bytes(path: str | os.PathLike[str], what: str = "", *, fix: str | None = None) -> bytes:
    """The bytes of a file nvlm was given; a missing or unreadable one is one `UserError`."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:  # not found, a directory, no permission
        raise UserError(f"cannot read {_label(path, what)}: {exc.strerror}", hint=fix) from None


def decode_text(data: bytes, path: str | os.PathLike[str], what: str = "") -> str:
    """UTF-8 text, or one `UserError` naming the first bad byte and its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at_line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{_label(path, what)} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line "
            f"{at_line})",
            hint="save it as UTF-8",
        ) from None


def parse_json(
    data: bytes, path: str | os.PathLike[str], what: str = "", *, fix: str | None = None
) -> object:
    """JSON from the bytes of `path`, or one `UserError` with the line and column."""
    text = decode_text(data, path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{_label(path, what)}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}",
            hint=fix,
        ) from None


def read_json(
    path: str | os.PathLike[str],
    what: str = "",
    *,
    fix: str | None = None,
    object_only: bool = True,
) -> object:
    """A JSON file nvlm was given (`what` names it: "config file", "null odds file").

    `object_only` refuses anything but a JSON object in one line, as every nvlm file format
    is one. `fix` is appended to the messages, e.g. "re-create it with nvlm data pretraining".
    """
    value = parse_json(read_bytes(path, what, fix=fix), path, what, fix=fix)
    if object_only and not isinstance(value, dict):
        raise UserError(f"{_label(path, what)} must hold a JSON object", hint=fix)
    return value


def read_yaml(path: str | os.PathLike[str], what: str = "", *, fix: str | None = None) -> object:
    """A YAML file nvlm was given (a config, a preset), or one `UserError` with the line."""
    import yaml  # here, so that importing nvlm.outputs stays cheap for the commands

    text = decode_text(read_bytes(path, what, fix=fix), path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{_label(path, what)} is not valid YAML{line}", hint=fix) from None


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file (or a directory's entries, after a rename) to the disk, where it can."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@contextmanager
def exclusive_lock(path: str | os.PathLike[str], busy: Callable[[], str]) -> Iterator[int]:
    """One writer at a time: an exclusive `flock` on `path` (a directory, or a lock file made if
    missing) while the block runs; yields its file descriptor (a child started with it keeps the
    lock while it lives). The kernel drops the lock when the process ends however it ends, so a
    killed run never blocks its rerun. Held by another process: `UserError(busy())`. A file
    system without locks: a UserError too, never a run unlocked (docs/reliability.md)."""
    target = Path(path)
    if target.is_dir():
        fd = os.open(target, os.O_RDONLY)
    else:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(busy()) from None
        except OSError as exc:
            raise UserError(
                f"cannot lock {target} ({exc.strerror}): use a file system with flock support "
                "(docs/reliability.md)"
            ) from None
        yield fd
    finally:
        os.close(fd)  # releases the lock
