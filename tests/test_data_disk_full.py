"""A full disk in `nvlm data`: one line naming the file and the space it needs, exit 1, the
partial file removed, never a crash.

Most tests make the write itself fail with ENOSPC (no root needed, so CI always checks the
message and the clean-up); one runs the real thing on a 1 MiB tmpfs when it can mount one.
"""

from __future__ import annotations

import bz2
import errno
import http.server
import io
import os
import subprocess
import sys
import threading
import zipfile

import pytest
from helpers import error_line
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.download import http_fetch
from nvlm.data.download import sources as download_sources
from nvlm.data.download.sources import Artifact
from nvlm.data.pretraining import h5_output
from nvlm.data.pretraining.h5_output import H5Output
from nvlm.data.pretraining.token_spill import TokenSpill
from nvlm.data.wikipedia import extract as wikipedia
from nvlm.errors import RunFailed

runner = CliRunner()


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _SmallDisk(io.FileIO):
    """A file on a disk with `room` bytes: a write past them fails with ENOSPC."""

    room = 200_000

    def write(self, data) -> int:
        if self.tell() + len(memoryview(data)) > self.room:
            raise _enospc()
        return super().write(data)


@pytest.fixture
def small_disk(monkeypatch):
    """HDF5 files (shards, LM streams) get a disk with 200 KB free."""
    monkeypatch.setattr(
        h5_output, "open", lambda path, *a, **k: _SmallDisk(path, "w+"), raising=False
    )


def disk_full_line(result) -> str:
    """The run's one error line (exit 1), which says the disk is full."""
    line = error_line(result, code=1)
    assert line.startswith("nvlm: error: no space left on the device"), line
    return line


def test_full_disk_while_writing_a_shard(small_disk, demo_corpus, demo_vocab, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["data", "pretraining", "--model", "bert", "--input", str(demo_corpus), "--vocab",
         str(demo_vocab), "--out", str(out), "--workers", "1", "--shards", "1"],
    )  # fmt: skip
    line = disk_full_line(result)
    assert f"writing {out / 'shard-00000.hdf5'} (" in line
    # 600 documents x 5 passes: a shard of about 5.5 MB; the estimate is within its range.
    needed = line.split("it needs about ")[1].split(")")[0]
    assert needed.endswith("MB") and 3.0 <= float(needed.split()[0]) <= 8.0, line
    assert not out.exists()  # made by the run, left empty, removed


def test_full_disk_while_spilling_tokens(demo_corpus, demo_vocab, tmp_path, monkeypatch):
    def full(self, *args):
        raise _enospc()

    monkeypatch.setattr(TokenSpill, "add", full)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["data", "pretraining", "--model", "bert", "--input", str(demo_corpus), "--vocab",
         str(demo_vocab), "--out", str(out), "--workers", "1", "--shards", "1"],
    )  # fmt: skip
    assert f"writing {out / '.nvlm-partial'} (" in disk_full_line(result)
    assert not out.exists()


def test_full_disk_in_data_lm(small_disk, tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("".join(f"w{i % 997} w{i % 13} w{i % 7}\n" for i in range(200_000)))
    out = tmp_path / "lm"
    result = runner.invoke(app, ["data", "lm", "--train", str(text), "--out", str(out)])
    line = disk_full_line(result)
    assert f"writing {out / 'train.hdf5'} (" in line and "it needs about" in line
    assert not out.exists()


def test_full_disk_in_data_wikipedia(tmp_path, monkeypatch):
    article = "Brimholm is a small town on the river. It was founded by weavers in 1312."
    page = (
        "<page><title>Brimholm</title><ns>0</ns><id>1</id>"
        f"<revision><id>2</id><text>{article}</text></revision></page>"
    )
    dump = tmp_path / "enwiki-pages-articles.xml.bz2"
    dump.write_bytes(bz2.compress(f"<mediawiki>{page}</mediawiki>".encode()))

    class FullText(io.StringIO):
        def write(self, text: str) -> int:
            raise _enospc()

    real_open = open

    def fake_open(path, mode="r", **kwargs):
        if "w" in mode:
            real_open(path, mode, **kwargs).close()  # the file exists, as on a real disk
            return FullText()
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(wikipedia, "open", fake_open, raising=False)
    out = tmp_path / "text"
    result = runner.invoke(
        app, ["data", "wikipedia", str(dump), "--out", str(out), "--workers", "1"]
    )
    assert f"writing {out} (" in disk_full_line(result)
    assert not out.exists()


class _Payload(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_full_disk_in_data_download_removes_the_part_file(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("wikitext-2/wiki.train.tokens", os.urandom(300_000))
    _Payload.body = buffer.getvalue()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Payload)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/wikitext-2-v1.zip"
        artifact = Artifact("wikitext-2-v1.zip", (url,), "sha256:" + "0" * 64)
        monkeypatch.setitem(download_sources.SOURCES, ("wikitext-2", None), (artifact,))
        monkeypatch.setattr(
            http_fetch, "open", lambda path, mode: _SmallDisk(path, mode[0]), raising=False
        )
        out = tmp_path / "d"
        result = runner.invoke(app, ["data", "download", "wikitext-2", "--out", str(out)])
    finally:
        httpd.shutdown()
        httpd.server_close()
    line = disk_full_line(result)
    assert f"writing {out / 'wikitext-2-v1.zip.part'} (" in line
    assert "it needs about 293" in line  # the Content-Length, in KB
    assert not out.exists()


def test_h5_output_keeps_failed_writes_readable_and_reports_them(tmp_path, monkeypatch):
    # After the first failed write, HDF5 must still read back what it wrote (its metadata),
    # or it fails in ways that crash the process; the error is reported by check().
    monkeypatch.setattr(
        h5_output, "open", lambda path, *a, **k: _SmallDisk(path, "w+"), raising=False
    )
    out = H5Output(tmp_path / "x.hdf5")
    out._sink.seek(190_000)
    out._sink.write(b"a" * 20_000)  # crosses the 200 KB room: fails, kept in memory
    assert out.failed
    out._sink.seek(195_000)
    assert out._sink.read(10) == b"a" * 10
    with pytest.raises(RunFailed, match="no space left on the device writing .*x.hdf5"):
        out.check(needed=5 << 20)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 1 MiB file system (root only; skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_real_full_disk_is_one_line_not_a_crash(tiny_tmpfs, demo_corpus, demo_vocab, workers):
    # In a child process: before the fix, h5py on a full disk crashed the interpreter (139).
    out = tiny_tmpfs / "out"
    done = subprocess.run(
        [sys.executable, "-m", "nvlm", "data", "pretraining", "--model", "bert", "--input",
         str(demo_corpus), "--vocab", str(demo_vocab), "--out", str(out), "--workers", workers,
         "--shards", "2"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = [x for x in done.stderr.splitlines() if x.startswith("nvlm:")]
    assert len(lines) == 1 and "no space left on the device writing" in lines[0], done.stderr
    assert list(tiny_tmpfs.iterdir()) == []
