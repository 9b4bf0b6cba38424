"""`nvlm data download`: fetch an official data set, verify its checksum, unpack it.

Network: each file streams to `<name>.part` (resumed with HTTP Range after an interruption),
is verified, and only then renamed to `<name>`. `--from PATH` takes a local file or directory
instead of the network and goes through the same verification (tests use it with their own
checksum table; nothing is ever trusted unverified). Layout of DIR:

    squad/v1.1/train-v1.1.json, dev-v1.1.json          (and v2.0)
    wikitext-2/wiki.{train,valid,test}.tokens           (+ wikitext-2-v1.zip)
    wikitext-103/wiki.{train,valid,test}.tokens         (+ wikitext-103-v1.zip)
    wikipedia/<lang>wiki-latest-pages-articles.xml.bz2  (+ its sha1sums file)
    CoLA/{train,dev,test}.tsv (+ CoLA.zip), SST-2/, QQP/, STS-B/, MNLI/, QNLI/, RTE/, WNLI/
                                                        (GLUE: download_glue_data.py's layout)
    MRPC/{train,dev,test}.tsv (+ Microsoft's two files and GLUE's dev ids they are built from)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from nvlm.data.download import sources as download_sources
from nvlm.data.download.http_fetch import Unreachable, fetch
from nvlm.data.download.mrpc import build_mrpc
from nvlm.data.download.sources import Artifact, wikipedia_urls
from nvlm.errors import RunFailed, UserError
from nvlm.outputs import atomic_path, check_writable_dir, is_disk_full

_ALGORITHMS = ("sha256", "sha1", "md5")


def file_checksum(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check(path: Path, checksum: str) -> str | None:
    """None if `path` matches "algo:hex", else the actual "algo:hex"."""
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unknown checksum type in {checksum!r}")
    actual = file_checksum(path, algorithm)
    return None if actual == expected.lower() else f"{algorithm}:{actual}"


def artifacts_for(
    dataset: str, version: str | None, task: str | None = None
) -> tuple[Artifact, ...]:
    if task is not None and dataset != "glue":
        raise UserError(f"--task applies to glue only, not {dataset}")
    if dataset == "glue":
        tasks = "|".join(download_sources.GLUE_FOLDERS)
        if version is not None:
            raise UserError("--version applies to squad only, not glue")
        if task is None:
            raise UserError("nvlm data download glue needs --task", hint=f"one of {tasks}")
        if ("glue", task.lower()) not in download_sources.SOURCES:
            raise UserError(f"unknown GLUE task {task!r}", hint=f"use one of {tasks}")
        return download_sources.SOURCES[("glue", task.lower())]
    if dataset == "squad":
        version = version or "1.1"
        if version not in download_sources.SQUAD_VERSIONS:
            raise UserError(
                f"SQuAD --version must be one of {', '.join(download_sources.SQUAD_VERSIONS)}, not {version!r}"
            )
        return download_sources.SOURCES[("squad", version)]
    if version is not None:
        raise UserError(f"--version applies to squad only, not {dataset}")
    if (dataset, None) not in download_sources.SOURCES:
        raise UserError(
            f"unknown data set {dataset!r}",
            hint=f"choose one of {', '.join(download_sources.DATASETS)}",
        )
    return download_sources.SOURCES[(dataset, None)]


def download_dataset(
    dataset: str,
    out: Path,
    *,
    version: str | None = None,
    lang: str = "en",
    from_path: Path | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[str, int, int | None], None] | None = None,
    task: str | None = None,
) -> dict:
    """Fetch (or take from `from_path`), verify and unpack one data set into `out`.

    A file already in `out` that is not the published one is replaced only with `overwrite`.
    On failure, the directories this call made (and left empty) are removed again.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    check_writable_dir(out)
    if from_path is not None and not from_path.exists():
        raise UserError(f"--from {from_path} does not exist")
    if dataset == "wikipedia":
        if version is not None:
            raise UserError("--version applies to squad only, not wikipedia")
        if not re.fullmatch(r"[a-z][a-z-]{1,15}", lang):
            raise UserError(f"--lang {lang!r} is not a Wikipedia language code (like en, de, pt)")
        dest = out / "wikipedia"
    else:
        artifacts = artifacts_for(dataset, version, task)
        dest = out / "squad" / f"v{version or '1.1'}" if dataset == "squad" else out
        if dataset == "glue" and task.lower() == "mrpc":
            dest = out / download_sources.GLUE_FOLDERS["mrpc"]  # the raw files, then the TSVs
    made = _missing_dirs(dest)
    files, unpacked = [], []
    try:
        if dataset == "wikipedia":
            artifacts = (_wikipedia_artifact(lang, dest, from_path),)
        dest.mkdir(parents=True, exist_ok=True)
        for artifact in artifacts:
            target = dest / artifact.filename
            source = _obtain(
                artifact, target, from_path, on_bytes, single=len(artifacts) == 1,
                overwrite=overwrite,
            )  # fmt: skip
            files.append(
                {
                    "path": str(target),
                    "checksum": artifact.checksum,
                    "bytes": target.stat().st_size,
                    "source": source,
                }
            )
            if artifact.members:
                made += _missing_dirs(*((out / m).parent for m in artifact.members))
                unpacked.extend(
                    _unzip(target, artifact.members, out, trusted=from_path is None,
                           overwrite=overwrite)
                )  # fmt: skip
        if dataset == "glue" and task.lower() == "mrpc":
            unpacked.extend(build_mrpc(dest, dest))
    except Unreachable as exc:
        _remove_empty(made)
        if dataset == "wikipedia":
            dump_url, sums_url = wikipedia_urls(lang)
            names = " and ".join(u.rsplit("/", 1)[1] for u in (dump_url, sums_url))
        else:
            names = ", ".join(a.filename for a in artifacts)
        command = f"glue --task {task.lower()}" if dataset == "glue" else dataset
        raise _offline(exc, command, names) from None
    except BaseException:
        _remove_empty(made)
        raise
    return {
        "dataset": dataset,
        "version": version,
        **({"task": task.lower()} if task else {}),
        "out": str(out),
        "files": files,
        "unpacked": unpacked,
    }


def _missing_dirs(*paths: Path) -> list[Path]:
    """The directories `paths` and their parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    for probe in paths:
        while not probe.exists() and probe not in missing and probe.parent != probe:
            missing.append(probe)
            probe = probe.parent
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(dirs: list[Path]) -> None:
    """After a failure: remove the directories this run made, if nothing is left in them."""
    for directory in sorted(set(dirs), key=lambda p: len(p.parts), reverse=True):
        for part in directory.glob("*.part"):
            if part.stat().st_size == 0:
                part.unlink()
        try:
            directory.rmdir()
        except OSError:
            pass  # not empty (a resumable .part, files of another run) or already gone


def _offline(exc: Unreachable, dataset: str, names: str) -> RunFailed:
    """The one line for a host that cannot be reached: what to do without a network."""
    if exc.resolved:
        status = (
            f"cannot reach {exc.host} ({exc.why}): this machine looks offline, or the host is down"
        )
    else:
        status = f"cannot resolve {exc.host}: this machine looks offline (no DNS)"
    return RunFailed(
        f"{status}; download {names} on a machine with network and pass them with "
        f"`nvlm data download {dataset} --from PATH` (a file, or the directory holding them)"
    )


def _obtain(
    artifact: Artifact, target: Path, from_path: Path | None, on_bytes, single: bool,
    overwrite: bool = False,
) -> str:  # fmt: skip
    """Make `target` a verified copy of the artifact; return where it came from."""
    if target.is_file():
        actual = check(target, artifact.checksum)
        if actual is None:
            return "already present"
        if not overwrite:
            raise UserError(
                f"{target} exists but is not the published {artifact.filename} "
                f"({actual}, expected {artifact.checksum})",
                hint="add --overwrite to replace it, or move it away",
            )
    if from_path is not None:
        source = from_path / artifact.filename if from_path.is_dir() else from_path
        if from_path.is_file() and from_path.name != artifact.filename and not single:
            raise UserError(
                f"--from {from_path} is not {artifact.filename}",
                hint="pass the directory that holds it",
            )
        if not source.is_file():
            raise UserError(f"{artifact.filename} not found in --from {from_path}")
        actual = check(source, artifact.checksum)
        if actual is not None:
            raise UserError(
                f"{source}: checksum {actual} does not match the published {artifact.checksum}",
                hint="is it the right file and version?",
            )
        _link_or_copy(source, target)
        return str(source)
    part = target.with_name(target.name + ".part")
    errors = []
    unreachable: list[Unreachable] = []
    for url in artifact.urls:
        try:
            fetch(
                url,
                part,
                on_bytes=(lambda d, t: on_bytes(artifact.filename, d, t)) if on_bytes else None,
            )
        except Unreachable as exc:
            unreachable.append(exc)
            errors.append(str(exc))
            continue
        except RunFailed as exc:
            if is_disk_full(exc.__cause__):
                raise  # another mirror would not help
            errors.append(str(exc))
            continue
        actual = check(part, artifact.checksum)
        if actual is None:
            os.replace(part, target)
            return url
        part.unlink()  # wrong bytes: never resume from them
        errors.append(f"{url}: checksum {actual} does not match the published {artifact.checksum}")
    if unreachable and len(unreachable) == len(errors):
        raise unreachable[0]  # no mirror reachable: most likely no network at all
    raise RunFailed(f"could not fetch {artifact.filename}: " + "; ".join(errors))


def _link_or_copy(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        return
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)  # a hard link costs nothing for a 20 GB dump on the same disk
        except OSError:
            shutil.copyfile(source, tmp)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def _unzip(
    archive: Path, members: tuple[str, ...], out: Path, trusted: bool, overwrite: bool = False
) -> list[str]:
    """Extract the listed members (only those: no path from the archive is trusted). A member
    already on disk is kept if it is the same bytes, and replaced only with `overwrite`."""
    error = RunFailed if trusted else UserError
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise error(f"{archive} is not a zip archive") from None
    written = []
    with zf:
        names = set(zf.namelist())
        for member in members:
            if member not in names:
                raise error(f"{archive} lacks {member}")
            target = out / member
            if target.is_file() and _crc32(target) != zf.getinfo(member).CRC and not overwrite:
                raise UserError(
                    f"{target} exists and differs from {member} in {archive.name}",
                    hint="add --overwrite to replace it, or move it away",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            written.append(str(target))
    return written


def _wikipedia_artifact(lang: str, dest: Path, from_path: Path | None) -> Artifact:
    """The dump with the sha1 its own sha1sums file lists (fetched, or found next to --from)."""
    dump_url, sums_url = wikipedia_urls(lang)
    dump_name = dump_url.rsplit("/", 1)[1]
    if from_path is not None:
        dump = from_path if from_path.is_file() else from_path / dump_name
        if not dump.is_file():
            raise UserError(f"{dump_name} not found in --from {from_path}")
        # enwiki-20240101-pages-articles.xml.bz2 -> enwiki-20240101-sha1sums.txt
        prefix = dump.name.split("-pages-articles")[0]
        sums = dump.with_name(f"{prefix}-sha1sums.txt")
        if not sums.is_file():
            raise UserError(
                f"no {sums.name} next to {dump}",
                hint=f"download it from the dump's directory (for the latest: {sums_url})",
            )
        return Artifact(
            dump.name, (), _sha1_from_sums(sums.read_text(encoding="utf-8"), dump.name, str(sums))
        )
    dest.mkdir(parents=True, exist_ok=True)
    sums = dest / sums_url.rsplit("/", 1)[1]
    part = sums.with_name(sums.name + ".part")
    part.unlink(missing_ok=True)
    fetch(sums_url, part)
    os.replace(part, sums)
    return Artifact(
        dump_name,
        (dump_url,),
        _sha1_from_sums(sums.read_text(encoding="utf-8"), dump_name, sums_url),
    )


def _sha1_from_sums(text: str, name: str, where: str) -> str:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == name and re.fullmatch(r"[0-9a-f]{40}", parts[0]):
            return "sha1:" + parts[0]
    raise UserError(f"{where} lists no sha1 for {name}")
