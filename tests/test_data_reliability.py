"""`nvlm data` on a shared cluster: no command writes over its inputs or over files it did not
make, a killed `data pretraining` leaves no worker behind and its rerun gives the same shards,
`data lm` leaves nothing on error, `data download` without a network says so, and `data verify`
prints its result on stdout. No test touches the internet."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from helpers import error_line
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.demo_corpus import write_demo_corpus
from nvlm.data.download import sources as download_sources
from nvlm.data.download.sources import Artifact
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.prepare import prepare_pretraining
from nvlm.data.pretraining.shard_format import PARTIAL_DIR

runner = CliRunner()
NVLM = [sys.executable, "-m", "nvlm"]
LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob("shard-*.hdf5"))
    }


def pretrain(corpus, vocab, out, *extra: str):
    return runner.invoke(
        app,
        ["data", "pretraining", "--model", "bert", "--input", str(corpus), "--vocab", str(vocab),
         "--out", str(out), "--workers", "1", "--seq-len", "64", "--dupe-factor", "1", *extra],
    )  # fmt: skip


# --- inputs are never written over; files nvlm did not make are replaced only when told -------


def test_vocab_never_writes_over_its_input_even_with_overwrite(demo_corpus, tmp_path):
    corpus = tmp_path / "c.txt"
    shutil.copyfile(demo_corpus, corpus)
    before = corpus.read_bytes()
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(
            app, ["data", "vocab", "--input", str(corpus), "--out", str(corpus), *extra]
        )
        line = error_line(result)
        assert f"--out {corpus} is the input --input {corpus}" in line
        assert "never writes over its inputs" in line
    assert corpus.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]  # no temporary file either


def test_vocab_replaces_an_existing_file_only_with_overwrite(demo_corpus, tmp_path):
    out = tmp_path / "vocab.txt"
    out.write_text("my notes\n")
    args = ["data", "vocab", "--input", str(demo_corpus), "--vocab-size", "300", "--out", str(out)]
    line = error_line(runner.invoke(app, args))
    assert f"--out {out} exists" in line and "--overwrite" in line
    assert out.read_text() == "my notes\n"
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("[PAD]\n")


def test_pretraining_out_equal_to_its_input_directory_is_refused(demo_corpus, demo_vocab, tmp_path):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    shutil.copyfile(demo_corpus, corpus_dir / "c.txt")
    line = error_line(pretrain(corpus_dir, demo_vocab, corpus_dir))
    assert f"--out {corpus_dir} is the input --input {corpus_dir}" in line
    assert sorted(p.name for p in corpus_dir.iterdir()) == ["c.txt"]
    # The vocab kept in --out would be replaced by the vocab copy: refused too.
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(demo_vocab, out / "vocab.txt")
    line = error_line(pretrain(demo_corpus, out / "vocab.txt", out))
    assert f"--out {out} contains the input --vocab {out / 'vocab.txt'}" in line


def test_pretraining_never_reads_its_own_out_inside_an_input_directory(
    demo_corpus, demo_vocab, tmp_path
):
    corpus_dir = tmp_path / "data"
    corpus_dir.mkdir()
    shutil.copyfile(demo_corpus, corpus_dir / "c.txt")
    out = corpus_dir / "shards"
    first = pretrain(corpus_dir, demo_vocab, out, "--shards", "2", "--json")
    assert first.exit_code == 0, first.output
    # The rerun sees the same single input (not the shards): same identity, shards kept.
    again = pretrain(corpus_dir, demo_vocab, out, "--shards", "2", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["shards_kept"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(i["path"]).name for i in manifest["inputs"]] == ["c.txt"]


def test_lm_out_holding_an_input_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("the cat sat\n")
    result = runner.invoke(
        app, ["data", "lm", "--train", str(data / "train.txt"), "--out", str(data)]
    )
    line = error_line(result)
    assert f"--out {data} contains the input --train {data / 'train.txt'}" in line
    assert sorted(p.name for p in data.iterdir()) == ["train.txt"]


def test_lm_replaces_files_it_did_not_make_only_with_overwrite(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat\n")
    out = tmp_path / "lm"
    out.mkdir()
    (out / "vocab.txt").write_text("mine\n")
    args = ["data", "lm", "--train", str(tmp_path / "train.txt"), "--out", str(out)]
    line = error_line(runner.invoke(app, args))
    assert "already holds vocab.txt, not made by `nvlm data lm`" in line and "--overwrite" in line
    assert (out / "vocab.txt").read_text() == "mine\n"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    # Its own directory is rebuilt without being told.
    assert runner.invoke(app, args).exit_code == 0
    assert (out / "vocab.txt").read_text() != "mine\n"


def test_wikipedia_dump_inside_out_is_refused(tmp_path):
    dump = tmp_path / "enwiki-pages-articles.xml.bz2"
    dump.write_bytes(b"BZh9")
    line = error_line(runner.invoke(app, ["data", "wikipedia", str(dump), "--out", str(tmp_path)]))
    assert f"--out {tmp_path} contains the input DUMP {dump}" in line


def test_demo_corpus_refuses_an_existing_corpus_without_overwrite(tmp_path):
    (tmp_path / "corpus.txt").write_text("mine\n")
    args = ["data", "demo-corpus", "--out", str(tmp_path), "--documents", "20"]
    line = error_line(runner.invoke(app, args))
    assert f"{tmp_path / 'corpus.txt'} exists" in line
    assert (tmp_path / "corpus.txt").read_text() == "mine\n"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


# --- data lm: every input checked first, nothing left on error --------------------------------


@pytest.fixture
def splits(tmp_path) -> dict[str, Path]:
    texts = {"train": "the cat sat on the mat\n", "empty": "\n  \n", "latin1": "ok\n"}
    paths = {name: tmp_path / f"{name}.txt" for name in texts}
    for name, text in texts.items():
        paths[name].write_text(text)
    paths["latin1"].write_bytes(b"the cat\ncaf\xe9\n")  # bad byte after a valid first line
    return paths


@pytest.mark.parametrize("bad", ["empty", "latin1"])
def test_lm_error_in_a_split_leaves_no_directory(splits, tmp_path, bad):
    out = tmp_path / "lm"
    args = ["data", "lm", "--train", str(splits["train"]), "--valid", str(splits[bad])]
    line = error_line(runner.invoke(app, [*args, "--out", str(out)]))
    assert ("holds no words (an empty split)" if bad == "empty" else "is not UTF-8") in line
    assert not out.exists()


def test_lm_error_leaves_an_existing_corpus_as_it_was(splits, tmp_path):
    out = tmp_path / "lm"
    ok = ["data", "lm", "--train", str(splits["train"]), "--valid", str(splits["train"])]
    assert runner.invoke(app, [*ok, "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = ["data", "lm", "--train", str(splits["train"]), "--valid", str(splits["latin1"])]
    error_line(runner.invoke(app, [*bad, "--out", str(out)]))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert runner.invoke(app, ["data", "verify", str(out)]).exit_code == 0


# --- data pretraining: killed runs, reruns, one writer per directory ---------------------------


def test_rerun_keeps_recorded_shards_and_rebuilds_everything_else(
    demo_corpus, demo_vocab, tmp_path
):
    cfg = PretrainingConfig.create("bert", seq_len=64, shards=3, dupe_factor=1)
    prepare_pretraining(cfg, [demo_corpus], demo_vocab, tmp_path / "clean")
    out = tmp_path / "out"
    shutil.copytree(tmp_path / "clean", out)
    # What a killed run leaves: its state (parameters, a record for shard 0 only), shard 1
    # finished after its parent died (no record) and cut short, a worker's temporary file.
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    (out / PARTIAL_DIR).mkdir()
    identity = {k: manifest[k] for k in ("parameters", "inputs", "vocab")}
    (out / PARTIAL_DIR / "params.json").write_text(json.dumps(identity))
    (out / PARTIAL_DIR / "shard-00000.hdf5.json").write_text(json.dumps(manifest["shards"][0]))
    with open(out / "shard-00001.hdf5", "r+b") as f:
        f.truncate(1000)
    (out / ".shard-00002.hdf5.999.tmp").write_bytes(b"half a shard")
    summary = prepare_pretraining(cfg, [demo_corpus], demo_vocab, out)
    assert (summary["shards_kept"], summary["shards_built"]) == (1, 2)
    assert digests(out) == digests(tmp_path / "clean")
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "shard-00000.hdf5", "shard-00001.hdf5", "shard-00002.hdf5", "vocab.txt"
    ]  # fmt: skip


def test_a_second_run_into_a_directory_being_written_is_refused(demo_corpus, demo_vocab, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the first run holds it
    try:
        line = error_line(pretrain(demo_corpus, demo_vocab, out))
    finally:
        os.close(fd)
    assert f"--out {out} is being written by another `nvlm data pretraining`" in line
    assert list(out.iterdir()) == []
    assert pretrain(demo_corpus, demo_vocab, out).exit_code == 0


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    """8000 documents: `--workers 2 --shards 4 --dupe-factor 2` takes a few seconds."""
    out = tmp_path_factory.mktemp("big")
    return Path(write_demo_corpus(out, documents=8000, seed=3)["path"])


def _command(corpus: Path, vocab: Path, out: Path) -> list[str]:
    return [*NVLM, "data", "pretraining", "--model", "bert", "--input", str(corpus),
            "--vocab", str(vocab), "--out", str(out), "--workers", "2", "--shards", "4",
            "--dupe-factor", "2", "--json"]  # fmt: skip


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended


def _all_gone(pids: list[int], seconds: float = 10) -> bool:
    """Every process in `pids` ends within `seconds` (multiprocessing's resource tracker, one of
    the children, leaves a moment after the parent)."""
    deadline = time.time() + seconds
    while any(map(_alive, pids)) and time.time() < deadline:
        time.sleep(0.05)
    return not any(map(_alive, pids))


def _wait(condition, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the signal"
        assert time.time() < deadline, "timed out waiting for the run to get there"
        time.sleep(0.02)


def _start(command: list[str], log: Path) -> subprocess.Popen:
    # SIGINT back to its default in the child, so that Python turns it into KeyboardInterrupt
    # even when this test runs in a background job (where the shell ignores SIGINT).
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


@pytest.mark.slow
@LINUX_PROC
def test_sigkill_of_the_parent_ends_its_workers_and_the_rerun_equals_a_clean_run(
    big_corpus, demo_vocab, tmp_path
):
    out = tmp_path / "out"
    proc = _start(_command(big_corpus, demo_vocab, out), tmp_path / "log")
    # Mid-way: the first shard is complete and recorded, the others are being built.
    _wait(lambda: any((out / PARTIAL_DIR).glob("shard-*.hdf5.json")), proc)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers
    proc.kill()
    proc.wait()
    assert _all_gone(workers), "a worker outlived its killed parent"

    rerun = subprocess.run(_command(big_corpus, demo_vocab, out), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["shards_kept"] >= 1 and summary["shards_built"] >= 1
    cfg = PretrainingConfig.create("bert", shards=4, dupe_factor=2)
    prepare_pretraining(cfg, [big_corpus], demo_vocab, tmp_path / "clean")
    assert digests(out) == digests(tmp_path / "clean")
    verified = subprocess.run([*NVLM, "data", "verify", str(out)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@LINUX_PROC
@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "data pretraining stopped by SIGTERM"),
     (signal.SIGINT, 130, "interrupted")],
)  # fmt: skip
def test_sigterm_and_ctrl_c_stop_the_workers_and_clean_up(
    big_corpus, demo_vocab, tmp_path, signum, code, said
):
    out = tmp_path / "out"
    log = tmp_path / "log"
    proc = _start(_command(big_corpus, demo_vocab, out), log)
    # The workers run and write their token spills.
    _wait(lambda: any((out / PARTIAL_DIR).glob("shard-*.ids")), proc)
    workers = _children(proc.pid)
    proc.send_signal(signum)  # to the parent only: it must stop its workers itself
    assert proc.wait(timeout=60) == code
    assert _all_gone(workers)
    assert said in log.read_text().strip().splitlines()[-1]
    assert "Traceback" not in log.read_text()
    left = [p.name for p in out.rglob("*")] if out.exists() else []
    assert not [n for n in left if n.endswith(".tmp") or n.endswith((".ids", ".sents", ".docs"))]


# --- data download without a network -------------------------------------------------------------


def test_download_offline_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    out = tmp_path / "data" / "squad-here"
    line = error_line(runner.invoke(app, ["data", "download", "squad", "--out", str(out)]), 1)
    assert "cannot resolve rajpurkar.github.io: this machine looks offline" in line
    assert "train-v1.1.json, dev-v1.1.json" in line
    assert "nvlm data download squad --from PATH" in line
    assert list(tmp_path.iterdir()) == []


def test_download_from_an_unreachable_host_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/wikitext-2-v1.zip"
    artifact = Artifact("wikitext-2-v1.zip", (url,), "sha256:" + "0" * 64, ("w/wiki.train.tokens",))
    monkeypatch.setitem(download_sources.SOURCES, ("wikitext-2", None), (artifact,))
    out = tmp_path / "new"
    line = error_line(runner.invoke(app, ["data", "download", "wikitext-2", "--out", str(out)]), 1)
    assert f"cannot reach 127.0.0.1:{port} (connection refused)" in line and "--from PATH" in line
    assert not out.exists()


def test_download_replaces_a_file_that_is_not_the_published_one_only_when_told(
    tmp_path, monkeypatch
):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train-v1.1.json").write_text('{"data": []}')
    checksum = "sha256:" + hashlib.sha256((src / "train-v1.1.json").read_bytes()).hexdigest()
    monkeypatch.setitem(
        download_sources.SOURCES, ("squad", "1.1"), (Artifact("train-v1.1.json", (), checksum),)
    )
    target = tmp_path / "out" / "squad" / "v1.1" / "train-v1.1.json"
    target.parent.mkdir(parents=True)
    target.write_text("my own edit")
    args = ["data", "download", "squad", "--out", str(tmp_path / "out"), "--from", str(src)]
    line = error_line(runner.invoke(app, args))
    assert f"{target} exists but is not the published train-v1.1.json" in line
    assert target.read_text() == "my own edit"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert target.read_text() == '{"data": []}'


# --- data verify: its result on stdout ------------------------------------------------------------


def test_verify_prints_its_result_on_stdout_and_the_error_on_stderr(
    demo_corpus, demo_vocab, tmp_path
):
    out = tmp_path / "shards"
    assert pretrain(demo_corpus, demo_vocab, out, "--shards", "2").exit_code == 0
    good = runner.invoke(app, ["data", "verify", str(out)])
    assert good.exit_code == 0 and good.stderr == ""
    assert "bad files" in good.stdout and "bad " not in good.stdout.replace("bad files", "")
    with h5py.File(out / "shard-00001.hdf5", "r+") as f:
        f["segment_ids"][5, 0] = 1
    result = runner.invoke(app, ["data", "verify", str(out)])
    line = error_line(result)
    assert "1 of 2 shard(s)" in line and "shard-00001.hdf5: sha256 differs" in line
    bad = [x for x in result.stdout.splitlines() if x.startswith("bad ")]
    assert len(bad) == 1 and bad[0].startswith("bad shard-00001.hdf5: sha256 differs")
    assert "files checked" in result.stdout
