"""`nvlm data vocab`, the vocab file format, and streaming text input (decode errors, offsets)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.special_tokens import SPECIAL_TOKENS
from nvlm.data.text_reader import iter_lines
from nvlm.data.vocab import Vocab
from nvlm.errors import UserError

runner = CliRunner()


def test_vocab_puts_specials_first_and_is_reproducible(demo_corpus, tmp_path):
    outs = []
    for name in ("a.txt", "b.txt"):
        result = runner.invoke(
            app,
            [
                "data",
                "vocab",
                "--input",
                str(demo_corpus),
                "--vocab-size",
                "500",
                "--out",
                str(tmp_path / name),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        outs.append((tmp_path / name).read_bytes())
    summary = json.loads(result.stdout)
    assert summary["vocab_size"] == 500 and summary["lowercase"] is True
    # Same text, same file: the trainer's hash-map order is canonicalised away.
    assert outs[0] == outs[1]
    tokens = outs[0].decode().splitlines()
    assert tuple(tokens[:5]) == SPECIAL_TOKENS
    assert all(t == t.lower() for t in tokens[5:])
    assert any(t.startswith("##") for t in tokens)
    vocab = Vocab.load(tmp_path / "a.txt")
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (
        0,
        1,
        2,
        3,
        4,
    )


def test_vocab_cased_keeps_capitals_and_reports_a_vocab_the_text_cannot_fill(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Alpha Beta gamma.\nAlpha beta Gamma.\n")
    result = runner.invoke(
        app,
        [
            "data",
            "vocab",
            "--input",
            str(corpus),
            "--vocab-size",
            "30522",
            "--out",
            str(tmp_path / "v.txt"),
            "--cased",
            "--min-frequency",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["vocab_size"] < 30522
    tokens = (tmp_path / "v.txt").read_text().splitlines()
    assert "Alpha" in tokens and "Gamma" in tokens


def test_vocab_inputs_may_follow_one_flag(tmp_path):
    (tmp_path / "a.txt").write_text("one two three\n")
    (tmp_path / "b.txt").write_text("four five six\n")
    result = runner.invoke(
        app,
        ["data", "vocab", "--input", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"),
         "--vocab-size", "100", "--min-frequency", "1", "--out", str(tmp_path / "v.txt"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tokens = set((tmp_path / "v.txt").read_text().splitlines())
    assert {"one", "six"} <= tokens


def test_vocab_missing_input_is_a_user_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "data",
            "vocab",
            "--input",
            str(tmp_path / "nope.txt"),
            "--vocab-size",
            "100",
            "--out",
            str(tmp_path / "v.txt"),
        ],
    )
    assert result.exit_code == 2
    assert f"input not found: {tmp_path / 'nope.txt'}" in result.stderr
    assert not (tmp_path / "v.txt").exists()


def test_vocab_empty_input_is_a_user_error(tmp_path):
    (tmp_path / "blank.txt").write_text("\n   \n\n")
    result = runner.invoke(
        app,
        [
            "data",
            "vocab",
            "--input",
            str(tmp_path / "blank.txt"),
            "--vocab-size",
            "100",
            "--out",
            str(tmp_path / "v.txt"),
        ],
    )
    assert result.exit_code == 2
    assert "no text in the input" in result.stderr
    assert not (tmp_path / "v.txt").exists()


def test_undecodable_bytes_name_file_and_offset_and_replace_continues(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line here\nsecond \xff\xfe line\n")
    args = [
        "data",
        "vocab",
        "--input",
        str(bad),
        "--vocab-size",
        "100",
        "--min-frequency",
        "1",
        "--out",
        str(tmp_path / "v.txt"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"{bad}: undecodable bytes at byte offset 22" in result.stderr
    assert "--errors replace" in result.stderr
    result = runner.invoke(app, [*args, "--errors", "replace"])
    assert result.exit_code == 0, result.output


def test_decode_error_offset_across_block_boundary(tmp_path, monkeypatch):
    # A multi-byte character split over two read blocks decodes fine; a bad byte after it is
    # reported at its true file offset.
    monkeypatch.setattr("nvlm.data.text_reader.BLOCK_BYTES", 3)
    path = tmp_path / "x.txt"
    path.write_bytes("ab\u00e9cd\nef\n".encode())
    assert list(iter_lines(path)) == ["ab\u00e9cd", "ef"]
    path.write_bytes("ab\u00e9cd\n".encode() + b"\x80")
    with pytest.raises(UserError, match="byte offset 7 "):
        list(iter_lines(path))


def test_vocab_without_special_tokens_names_the_missing_ones(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nhello\n##s\n")
    with pytest.raises(UserError, match=r"lacks the special tokens \[CLS\] \[SEP\] \[MASK\]"):
        Vocab.load(path)


def test_google_layout_vocab_is_read_by_token_not_position(tmp_path):
    tokens = (
        ["[PAD]"]
        + [f"[unused{i}]" for i in range(99)]
        + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]
    )
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n")
    vocab = Vocab.load(path)
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (
        0,
        100,
        101,
        102,
        103,
    )
    assert vocab.tokenizer().encode("hello", add_special_tokens=False).ids == [104]


def test_min_freq_is_the_option_and_the_old_name_still_works_with_a_note(tmp_path):
    (tmp_path / "a.txt").write_text("one two three one two\n")
    new = runner.invoke(app, ["data", "vocab", "--input", str(tmp_path / "a.txt"), "--vocab-size",
                              "100", "--min-freq", "1", "--out", str(tmp_path / "new.txt")])  # fmt: skip
    old = runner.invoke(app, ["data", "vocab", "--input", str(tmp_path / "a.txt"), "--vocab-size",
                              "100", "--min-frequency", "1", "--out", str(tmp_path / "old.txt")])  # fmt: skip
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert (tmp_path / "new.txt").read_text() == (tmp_path / "old.txt").read_text()
    assert "--min-frequency is now --min-freq" in old.output
    assert "--min-frequency" not in new.output
