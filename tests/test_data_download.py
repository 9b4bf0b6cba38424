"""`nvlm data download`: verify + unpack from --from, HTTP Range resume, checksum mismatches.

No test touches the internet: `--from` takes local files, and the HTTP path talks to a server
on 127.0.0.1. The checksum table is swapped for one describing the test's own files.
"""

from __future__ import annotations

import bz2
import hashlib
import http.server
import json
import threading
import zipfile

import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.download import sources as download_sources
from nvlm.data.download.sources import Artifact

runner = CliRunner()
MEMBERS = (
    "wikitext-2/wiki.train.tokens",
    "wikitext-2/wiki.valid.tokens",
    "wikitext-2/wiki.test.tokens",
)


def _fake_wikitext(path):
    with zipfile.ZipFile(path, "w") as zf:
        for member in MEMBERS:
            zf.writestr(member, f" = {member} = \n some text .\n")
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_published_table_has_every_dataset():
    # The real table: what the command downloads without --from.
    squad = download_sources.SOURCES[("squad", "1.1")]
    assert [a.filename for a in squad] == ["train-v1.1.json", "dev-v1.1.json"]
    assert all(
        a.checksum.startswith("sha256:") and len(a.checksum) == 7 + 64
        for s in download_sources.SOURCES.values()
        for a in s
    )
    assert (
        download_sources.SOURCES[("wikitext-103", None)][0].members[0]
        == "wikitext-103/wiki.train.tokens"
    )


def test_from_local_zip_verifies_and_unpacks(tmp_path, monkeypatch):
    archive = tmp_path / "wikitext-2-v1.zip"
    checksum = _fake_wikitext(archive)
    monkeypatch.setitem(
        download_sources.SOURCES,
        ("wikitext-2", None),
        (Artifact("wikitext-2-v1.zip", (), checksum, MEMBERS),),
    )
    out = tmp_path / "data"
    result = runner.invoke(
        app, ["data", "download", "wikitext-2", "--out", str(out), "--from", str(archive), "--json"]
    )
    assert result.exit_code == 0, result.output
    for split in ("train", "valid", "test"):
        assert (out / "wikitext-2" / f"wiki.{split}.tokens").read_text().endswith("some text .\n")
    summary = json.loads(result.stdout)
    assert summary["files"][0]["source"] == str(archive)


def test_from_file_with_wrong_checksum_is_a_user_error(tmp_path, monkeypatch):
    archive = tmp_path / "wikitext-2-v1.zip"
    _fake_wikitext(archive)
    monkeypatch.setitem(
        download_sources.SOURCES,
        ("wikitext-2", None),
        (Artifact("wikitext-2-v1.zip", (), "sha256:" + "0" * 64, MEMBERS),),
    )
    result = runner.invoke(
        app,
        ["data", "download", "wikitext-2", "--out", str(tmp_path / "data"), "--from", str(archive)],
    )
    assert result.exit_code == 2
    assert "does not match the published sha256:000" in result.stderr
    assert not (tmp_path / "data" / "wikitext-2").exists()


def test_squad_from_directory_and_md5_checksums(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    artifacts = []
    for name in ("train-v2.0.json", "dev-v2.0.json"):
        (src / name).write_text(json.dumps({"version": "v2.0", "data": []}))
        artifacts.append(
            Artifact(name, (), "md5:" + hashlib.md5((src / name).read_bytes()).hexdigest())
        )
    monkeypatch.setitem(download_sources.SOURCES, ("squad", "2.0"), tuple(artifacts))
    result = runner.invoke(
        app,
        [
            "data",
            "download",
            "squad",
            "--version",
            "2.0",
            "--out",
            str(tmp_path / "d"),
            "--from",
            str(src),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads((tmp_path / "d" / "squad" / "v2.0" / "dev-v2.0.json").read_text())["version"]
        == "v2.0"
    )
    bad = runner.invoke(
        app, ["data", "download", "squad", "--version", "3.0", "--out", str(tmp_path / "d")]
    )
    assert bad.exit_code == 2 and "SQuAD --version must be one of 1.1, 2.0" in bad.stderr


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    seen_ranges: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        start = 0
        rng = self.headers.get("Range")
        if rng:
            self.seen_ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}"
            )
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_http_download_resumes_a_part_file_with_range(tmp_path, monkeypatch, server):
    archive = tmp_path / "w.zip"
    checksum = _fake_wikitext(archive)
    _RangeHandler.payload = archive.read_bytes()
    _RangeHandler.seen_ranges = []
    url = f"http://127.0.0.1:{server.server_address[1]}/wikitext-2-v1.zip"
    monkeypatch.setitem(
        download_sources.SOURCES,
        ("wikitext-2", None),
        (Artifact("wikitext-2-v1.zip", (url,), checksum, MEMBERS),),
    )
    out = tmp_path / "data"
    out.mkdir()
    half = len(_RangeHandler.payload) // 2
    (out / "wikitext-2-v1.zip.part").write_bytes(_RangeHandler.payload[:half])
    result = runner.invoke(app, ["data", "download", "wikitext-2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert _RangeHandler.seen_ranges == [f"bytes={half}-"]
    assert (out / "wikitext-2-v1.zip").read_bytes() == _RangeHandler.payload
    assert not (out / "wikitext-2-v1.zip.part").exists()
    assert (out / "wikitext-2" / "wiki.valid.tokens").is_file()


def test_http_download_with_wrong_bytes_fails_and_keeps_nothing(tmp_path, monkeypatch, server):
    _RangeHandler.payload = b"not the archive"
    url = f"http://127.0.0.1:{server.server_address[1]}/wikitext-2-v1.zip"
    monkeypatch.setitem(
        download_sources.SOURCES,
        ("wikitext-2", None),
        (Artifact("wikitext-2-v1.zip", (url,), "sha256:" + "1" * 64, MEMBERS),),
    )
    result = runner.invoke(app, ["data", "download", "wikitext-2", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "does not match the published sha256:111" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_wikipedia_from_local_dump_checked_against_its_sha1sums(tmp_path):
    src = tmp_path / "dumps"
    src.mkdir()
    dump = src / "enwiki-latest-pages-articles.xml.bz2"
    dump.write_bytes(bz2.compress(b"<mediawiki></mediawiki>"))
    sha1 = hashlib.sha1(dump.read_bytes()).hexdigest()
    sums = src / "enwiki-latest-sha1sums.txt"
    sums.write_text(f"{'a' * 40}  enwiki-latest-abstract.xml.gz\n{sha1}  {dump.name}\n")
    result = runner.invoke(
        app, ["data", "download", "wikipedia", "--out", str(tmp_path / "d"), "--from", str(src)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "wikipedia" / dump.name).read_bytes() == dump.read_bytes()
    sums.write_text(f"{'b' * 40}  {dump.name}\n")
    (tmp_path / "d" / "wikipedia" / dump.name).unlink()
    result = runner.invoke(
        app, ["data", "download", "wikipedia", "--out", str(tmp_path / "d"), "--from", str(src)]
    )
    assert result.exit_code == 2 and "does not match the published sha1:bbbb" in result.stderr
