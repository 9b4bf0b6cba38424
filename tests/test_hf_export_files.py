"""Hugging Face exports are complete: the tokenizer files `transformers` loads (tokenizer.json,
special_tokens_map.json, tokenizer_config.json) next to the weights, the tokenizer giving nvlm's
own ids, every file readable by others, and the export still readable by nvlm."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import error_line, invoke, json_of, ok
from tokenizers import Tokenizer

from nvlm.data.vocab import Vocab

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--set", "model.size=tiny", "--set", "train.accumulation=1", "--set",
        "train.batch_size=8", "--set", "train.warmup_steps=1", "--steps", 1]  # fmt: skip
EXPORT = {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
          "special_tokens_map.json", "tokenizer_config.json", ".nvlm"}  # fmt: skip
SPECIALS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "cls_token": "[CLS]", "mask_token": "[MASK]"}  # fmt: skip
TEXT = "The cat sat on the mat, near the river."
SECOND = "A dog ran in the park."


@pytest.fixture(autouse=True)
def _umask_022():
    """The usual umask, so that "readable by others" is 0644 whatever the caller's is."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def bert_run(bert_shards, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("bert") / "run"
    ok(invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", bert_shards,
              "--out", run, *TINY))  # fmt: skip
    return run


@pytest.fixture(scope="module")
def electra_run(electra_shards, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("electra") / "run"
    ok(invoke("pretrain", "--model", "electra", "--preset", "cpu-fp32", "--data", electra_shards,
              "--out", run, *TINY, "--set", "data.max_predictions=5"))  # fmt: skip
    return run


def modes(directory: Path) -> dict[str, str]:
    """name -> octal mode of `directory` ("." itself) and each file in it."""
    entries = {".": directory, **{p.name: p for p in directory.iterdir()}}
    return {name: oct(p.stat().st_mode & 0o777) for name, p in entries.items()}


def assert_complete(export: Path, tokenizer_class: str, lowercase: bool, max_length: int):
    """The file set, the modes, the tokenizer files' content, and tokenizer.json giving the ids
    of nvlm's own tokenizer (the one SQuAD features and predict use) between [CLS]/[SEP]."""
    assert {p.name for p in export.iterdir()} == EXPORT
    assert modes(export) == {".": "0o755", **{name: "0o644" for name in EXPORT}}
    assert json.loads((export / "special_tokens_map.json").read_text()) == SPECIALS
    config = json.loads((export / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == tokenizer_class
    assert config["do_lower_case"] is lowercase
    assert config["model_max_length"] == max_length
    vocab = Vocab.load(export / "vocab.txt")
    ours = vocab.tokenizer(lowercase)
    fast = Tokenizer.from_file(str(export / "tokenizer.json"))
    one = fast.encode(TEXT)
    assert one.ids == [vocab.cls_id, *ours.encode(TEXT).ids, vocab.sep_id]
    assert set(one.type_ids) == {0}
    two = fast.encode(TEXT, SECOND)
    second = ours.encode(SECOND).ids
    assert two.ids == one.ids + second + [vocab.sep_id]
    assert two.type_ids == [0] * len(one.ids) + [1] * (len(second) + 1)
    # As Hugging Face's BERT tokenizers: a special token in the text is that token.
    assert vocab.mask_id in fast.encode("the [MASK] sat").ids
    return fast


def test_bert_run_export_has_the_tokenizer_files_readable_by_all(bert_run, tmp_path):
    export = tmp_path / "hf"
    ok(invoke("convert", bert_run, export, "--model", "bert", "--to", "hf"))
    max_position = json.loads((export / "config.json").read_text())["max_position_embeddings"]
    fast = assert_complete(export, "BertTokenizer", True, max_position)
    # It reads back: as --init (the same tokens as from the run) and as a run.
    features = [json_of(invoke("predict", "--model", "bert", "--init", src, "--task",
                               "features", "--text", TEXT, "--json")) for src in (bert_run, export)]  # fmt: skip
    assert features[0]["tokens"] == features[1]["tokens"] == fast.encode(TEXT).tokens
    ok(invoke("convert", export, tmp_path / "back", "--model", "bert", "--to", "nvlm"))
    assert modes(tmp_path / "back")["."] == "0o755"  # was 0o700 (mkdtemp)


def test_a_cased_run_exports_a_cased_tokenizer(tmp_path):
    ok(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "run", "--model", "bert",
              "--to", "nvlm"))  # fmt: skip
    (tmp_path / "run" / "tokenizer_config.json").write_text('{"do_lower_case": false}\n')
    ok(invoke("convert", tmp_path / "run", tmp_path / "hf", "--model", "bert", "--to", "hf"))
    fast = assert_complete(tmp_path / "hf", "BertTokenizer", False, 64)
    assert "The" in fast.normalizer.normalize_str("The Cat")  # cased: no lower-casing


def test_hugging_face_and_google_sources_convert_to_complete_exports(tmp_path):
    ok(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "hf", "--to", "hf"))
    assert_complete(tmp_path / "hf", "BertTokenizer", True, 64)
    google = FIXTURES / "bert_tiny_google" / "bert_model.ckpt"
    ok(invoke("convert", google, tmp_path / "google", "--to", "hf"))
    assert_complete(tmp_path / "google", "BertTokenizer", True, 64)


def test_export_files_follow_the_umask_as_open_does(tmp_path):
    os.umask(0o027)
    ok(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "hf", "--to", "hf"))
    assert set(modes(tmp_path / "hf").values()) == {"0o750", "0o640"}
    assert modes(tmp_path / "hf")["."] == "0o750"


def test_electra_pretraining_export_and_convert_are_complete(electra_run, tmp_path):
    max_position = json.loads((electra_run / "hf" / "discriminator" / "config.json").read_text())[
        "max_position_embeddings"
    ]
    ok(invoke("convert", electra_run, tmp_path / "pair", "--model", "electra", "--to", "hf"))
    for pair in (electra_run / "hf", tmp_path / "pair"):
        for part in ("discriminator", "generator"):
            assert_complete(pair / part, "ElectraTokenizer", True, max_position)
    # Reads back as a run (weights bit for bit: test_electra_pretrain.py).
    ok(invoke("convert", tmp_path / "pair", tmp_path / "back", "--model", "electra",
              "--to", "nvlm"))  # fmt: skip
    assert (tmp_path / "back" / "checkpoints" / "checkpoint").is_file()


def test_hugging_face_electra_pair_round_trip_is_complete(tmp_path):
    pair = FIXTURES / "electra_tiny_hf"
    ok(invoke("convert", pair, tmp_path / "run", "--model", "electra", "--to", "nvlm"))
    ok(invoke("convert", tmp_path / "run", tmp_path / "hf", "--model", "electra", "--to", "hf"))
    for part in ("discriminator", "generator"):
        max_position = json.loads((pair / part / "config.json").read_text())[
            "max_position_embeddings"
        ]
        assert_complete(tmp_path / "hf" / part, "ElectraTokenizer", True, max_position)


def test_converting_an_electra_run_as_bert_is_one_line(electra_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(electra_run, run)
    line = error_line(invoke("convert", run, tmp_path / "hf", "--model", "bert", "--to", "hf"))
    assert line == f"nvlm: error: {run} is an nvlm electra run, not BERT (add --model electra)"
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("model", ["bert", "electra"])
def test_transformers_auto_tokenizer_loads_the_export(model, tmp_path):
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed in .venv: AutoTokenizer not tried"
    )
    src = FIXTURES / ("bert_tiny_hf" if model == "bert" else "electra_tiny_hf")
    ok(invoke("convert", src, tmp_path / "run", "--model", model, "--to", "nvlm"))
    ok(invoke("convert", tmp_path / "run", tmp_path / "hf", "--model", model, "--to", "hf"))
    export = tmp_path / "hf" if model == "bert" else tmp_path / "hf" / "discriminator"
    auto = transformers.AutoTokenizer.from_pretrained(export)
    fast = Tokenizer.from_file(str(export / "tokenizer.json"))
    assert type(auto).__name__ == (
        "BertTokenizerFast" if model == "bert" else "ElectraTokenizerFast"
    )
    assert auto(TEXT)["input_ids"] == fast.encode(TEXT).ids
    assert auto(TEXT, SECOND)["token_type_ids"] == fast.encode(TEXT, SECOND).type_ids
    assert auto.do_lower_case is True and auto.model_max_length == 64


def test_an_export_without_a_vocab_has_no_guessed_tokenizer_files(tmp_path):
    from nvlm.convert import export_hf, load_checkpoint, model_for, read_checkpoint

    model = model_for(read_checkpoint(FIXTURES / "bert_tiny_hf"))
    load_checkpoint(model, FIXTURES / "bert_tiny_hf")
    export_hf(model, tmp_path / "hf")
    assert modes(tmp_path / "hf") == {".": "0o755", ".nvlm": "0o644", "config.json": "0o644",
                                      "model.safetensors": "0o644"}  # fmt: skip
