"""Bad input to `nvlm data pretraining`: exit code 2, one clear line, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import error_line
from typer.testing import CliRunner

from nvlm.cli.main import app

runner = CliRunner()


def _pretrain(corpus, vocab, out, *extra: str):
    return runner.invoke(
        app,
        ["data", "pretraining", "--model", "bert", "--input", str(corpus), "--vocab", str(vocab),
         "--out", str(out), "--workers", "1", *extra],
    )  # fmt: skip


def _assert_user_error(result, *fragments: str) -> None:
    """The shared error line (exit 2), alone on stderr, holding every fragment."""
    line = error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in line, line


def test_missing_input_file(demo_vocab, tmp_path):
    result = _pretrain(tmp_path / "missing.txt", demo_vocab, tmp_path / "out")
    _assert_user_error(result, f"input not found: {tmp_path / 'missing.txt'}")
    assert not (tmp_path / "out").exists()


def test_empty_input(demo_vocab, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    result = _pretrain(tmp_path / "empty.txt", demo_vocab, tmp_path / "out")
    _assert_user_error(result, "no text in the input", "empty.txt")
    assert not (tmp_path / "out").exists()


def test_undecodable_bytes_report_offset_and_replace_continues(demo_corpus, demo_vocab, tmp_path):
    bad = tmp_path / "bad.txt"
    good = demo_corpus.read_bytes()
    bad.write_bytes(good[:1000] + b"\xc3\x28" + good[1000:])
    result = _pretrain(bad, demo_vocab, tmp_path / "out", "--shards", "1")
    _assert_user_error(result, f"{bad}: undecodable bytes at byte offset 1000", "--errors replace")
    assert not (tmp_path / "out").exists()
    result = _pretrain(
        bad,
        demo_vocab,
        tmp_path / "out",
        "--shards",
        "1",
        "--errors",
        "replace",
        "--dupe-factor",
        "1",
    )
    assert result.exit_code == 0, result.output


def test_vocab_without_special_tokens(demo_corpus, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[SEP]\nthe\n")
    result = _pretrain(demo_corpus, vocab, tmp_path / "out")
    _assert_user_error(result, "lacks the special tokens [CLS] [MASK]")


@pytest.mark.parametrize("seq_len", ["513", "7"])
def test_seq_len_out_of_range(demo_corpus, demo_vocab, tmp_path, seq_len):
    result = _pretrain(demo_corpus, demo_vocab, tmp_path / "out", "--seq-len", seq_len)
    _assert_user_error(result, f"--seq-len must be between 8 and 512, not {seq_len}")


def test_max_predictions_larger_than_the_sequence_holds(demo_corpus, demo_vocab, tmp_path):
    result = _pretrain(
        demo_corpus, demo_vocab, tmp_path / "out", "--seq-len", "16", "--max-predictions", "14"
    )
    _assert_user_error(result, "--max-predictions 14 does not fit --seq-len 16", "at most 13")


def test_too_many_shards_for_the_documents(tmp_path, demo_vocab):
    (tmp_path / "c.txt").write_text("one sentence here.\nand another.\n\nsecond doc.\nmore.\n")
    result = _pretrain(tmp_path / "c.txt", demo_vocab, tmp_path / "out", "--shards", "2")
    _assert_user_error(result, "the input has 2 document(s), too few for 2 shard(s)", "--shards 1")


def test_out_made_with_other_parameters_names_the_parameter(demo_corpus, demo_vocab, tmp_path):
    out = tmp_path / "out"
    assert (
        _pretrain(
            demo_corpus, demo_vocab, out, "--seq-len", "32", "--dupe-factor", "1", "--shards", "1"
        ).exit_code
        == 0
    )
    before = sorted(p.name for p in out.iterdir())
    result = _pretrain(
        demo_corpus, demo_vocab, out, "--seq-len", "64", "--dupe-factor", "1", "--shards", "1"
    )
    _assert_user_error(
        result,
        "was made with other parameters: seq_len=32 (now 64)",
        "another --out",
        "--overwrite",
    )
    assert sorted(p.name for p in out.iterdir()) == before
    result = _pretrain(
        demo_corpus,
        demo_vocab,
        out,
        "--seq-len",
        "64",
        "--dupe-factor",
        "1",
        "--shards",
        "1",
        "--overwrite",
    )
    assert result.exit_code == 0, result.output


def test_out_with_foreign_files_is_refused(demo_corpus, demo_vocab, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = _pretrain(demo_corpus, demo_vocab, out)
    _assert_user_error(result, "is not empty and was not made by `nvlm data pretraining`")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_changed_input_is_named(demo_corpus, demo_vocab, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(demo_corpus.read_bytes())
    out = tmp_path / "out"
    assert _pretrain(corpus, demo_vocab, out, "--dupe-factor", "1", "--shards", "1").exit_code == 0
    corpus.write_bytes(demo_corpus.read_bytes() + b"\nOne more sentence.\n")
    result = _pretrain(corpus, demo_vocab, out, "--dupe-factor", "1", "--shards", "1")
    _assert_user_error(result, "other content in input 1", str(Path(corpus).resolve()))


def test_vocab_of_only_special_tokens(demo_corpus, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    result = _pretrain(demo_corpus, vocab, tmp_path / "out")
    _assert_user_error(result, "holds only the special tokens", "nvlm data vocab")
    assert not (tmp_path / "out").exists()


def test_one_document_names_the_real_problem(demo_vocab, tmp_path):
    (tmp_path / "c.txt").write_text("one sentence here.\nand another.\n")
    result = _pretrain(tmp_path / "c.txt", demo_vocab, tmp_path / "out")
    _assert_user_error(
        result, "the input has 1 document; BERT pretraining needs at least 2", "blank line"
    )
    assert "--shards" not in result.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["data", "pretraining", "--model", "bert", "--input", "{corpus}", "--vocab", "{dir}",
          "--out", "{out}"], "vocab {dir} is a directory, not a vocab.txt file (pass {dir}/vocab.txt)"),
        (["data", "lm", "--train", "{dir}", "--out", "{out}"],
         "--train {dir} is a directory, not a text file"),
        (["data", "lm", "--train", "{corpus}", "--vocab", "{dir}", "--out", "{out}"],
         "vocabulary {dir} is a directory, not a vocab.txt file"),
        (["data", "wikipedia", "{dir}", "--out", "{out}"],
         "the dump {dir} is a directory, not a file (pass the pages-articles .xml.bz2 file"),
    ],
)  # fmt: skip
def test_a_directory_where_a_file_is_expected(demo_corpus, demo_vocab, tmp_path, command, expected):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "vocab.txt").write_bytes(demo_vocab.read_bytes())
    values = {"corpus": str(demo_corpus), "dir": str(folder), "out": str(tmp_path / "out")}
    result = runner.invoke(app, [arg.format(**values) for arg in command])
    _assert_user_error(result, expected.format(**values))
    assert not (tmp_path / "out").exists()


def test_out_below_a_file_is_one_line(demo_corpus, demo_vocab, tmp_path):
    (tmp_path / "afile").write_text("x")
    for args in (
        ["data", "vocab", "--input", str(demo_corpus), "--out", str(tmp_path / "afile" / "v.txt")],
        ["data", "pretraining", "--model", "bert", "--input", str(demo_corpus), "--vocab",
         str(demo_vocab), "--out", str(tmp_path / "afile" / "shards")],
        ["data", "lm", "--train", str(demo_corpus), "--out", str(tmp_path / "afile" / "lm")],
    ):  # fmt: skip
        _assert_user_error(runner.invoke(app, args), f"{tmp_path / 'afile'} is a file")


def test_unwritable_out_is_one_line(demo_corpus, demo_vocab, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        # root writes anywhere: permission bits are not enforced, so deny the check itself.
        real = os.access
        monkeypatch.setattr(
            "nvlm.outputs.os.access", lambda p, mode: Path(p) != locked and real(p, mode)
        )
    else:
        locked.chmod(0o500)
    try:
        for args in (
            ["data", "vocab", "--input", str(demo_corpus), "--out", str(locked / "v.txt")],
            ["data", "pretraining", "--model", "bert", "--input", str(demo_corpus), "--vocab",
             str(demo_vocab), "--out", str(locked / "shards")],
        ):  # fmt: skip
            _assert_user_error(runner.invoke(app, args), f"permission denied to write in {locked}")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
