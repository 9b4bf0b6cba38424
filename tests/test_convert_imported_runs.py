"""`nvlm convert --to nvlm` of an exported question-answering model (issue 16): the run it writes
has SQuAD shapes that validate (seq 384 / query 64 / stride 128, cut to the model's positions),
`--set` changes them and the query and stride follow, and the run evaluates as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import error_line, invoke, ok

from nvlm.convert import export_hf
from nvlm.models.bert import BertBackbone, BertConfig, BertQuestionAnswerer
from nvlm.plugins.encoder.interchange import imported_data_settings

FIXTURES = Path(__file__).parent / "fixtures"
SQUAD = FIXTURES / "squad"


@pytest.fixture(scope="module")
def hf_qa(tmp_path_factory) -> Path:
    """A tiny BERT question answerer as nvlm exports it (BertForQuestionAnswering)."""
    out = tmp_path_factory.mktemp("hf-qa") / "qa"
    vocab = SQUAD / "vocab-uncased.txt"
    cfg = BertConfig.from_size("tiny", vocab_size=len(vocab.read_text().splitlines()))
    export_hf(BertQuestionAnswerer(BertBackbone(**cfg.to_backbone_kwargs())), out)
    shutil.copy(vocab, out / "vocab.txt")
    return out


def data_section(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["data"]


def test_an_exported_question_answerer_converts_back_with_squad_shapes(hf_qa, tmp_path):
    ok(invoke("convert", hf_qa, tmp_path / "run", "--to", "nvlm"))  # no --model: from config
    data = data_section(tmp_path / "run")
    assert (data["seq_len"], data["max_query_len"], data["doc_stride"]) == (384, 64, 128)


def test_set_changes_the_imported_runs_length_and_the_stride_follows(hf_qa, tmp_path):
    run = tmp_path / "run"
    ok(invoke("convert", hf_qa, run, "--to", "nvlm", "--set", "data.seq_len=128"))
    data = data_section(run)
    # 128 - 32 - 3 = 93 document tokens: the stride fits them (128 would be refused).
    assert (data["seq_len"], data["max_query_len"], data["doc_stride"]) == (128, 32, 93)
    result = ok(invoke("eval", "--task", "squad", "--init", run,
                       "--data", SQUAD / "tiny-v1.1.json", "--out", tmp_path / "eval"))  # fmt: skip
    assert (tmp_path / "eval" / "predictions.json").is_file(), result.stderr


def test_a_stride_the_user_sets_is_kept_and_one_that_does_not_fit_is_one_line(hf_qa, tmp_path):
    result = invoke("convert", hf_qa, tmp_path / "run", "--to", "nvlm",
                    "--set", "data.seq_len=128", "--set", "data.doc_stride=100")  # fmt: skip
    assert result.exit_code == 2
    assert "data.doc_stride=100" in error_line(result)
    assert not (tmp_path / "run").exists()


def test_set_does_not_apply_to_an_hf_export(hf_qa, tmp_path):
    result = invoke("convert", hf_qa, tmp_path / "out", "--to", "hf", "--set", "data.seq_len=64")
    assert result.exit_code == 2
    assert error_line(result) == (
        "nvlm: error: --set applies to --to nvlm (the config of the run it writes), not --to hf"
    )
    assert not (tmp_path / "out").exists()


def test_an_electra_import_takes_set_too(tmp_path):
    run = tmp_path / "run"
    src = FIXTURES / "electra_tiny_hf" / "discriminator"
    ok(invoke("convert", src, run, "-m", "electra", "--to", "nvlm", "--set", "data.seq_len=32"))
    assert data_section(run)["seq_len"] == 32


@pytest.mark.parametrize(
    ("stage", "positions", "sets", "expected"),
    [
        ("squad", 512, (), {"data.seq_len": 384, "data.max_query_len": 64, "data.doc_stride": 128}),
        ("squad", 128, (), {"data.seq_len": 128, "data.max_query_len": 32, "data.doc_stride": 93}),
        ("squad", 512, ("data.max_query_len=300",), {"data.seq_len": 384, "data.doc_stride": 81}),
        ("features", 64, (), {"data.seq_len": 64}),
        ("pretrain_phase1", 512, ("data.seq_len=256",), {}),
    ],
)
def test_imported_data_settings_fit_the_model_and_follow_set(stage, positions, sets, expected):
    assert imported_data_settings(stage, positions, sets) == expected
