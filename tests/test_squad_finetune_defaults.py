"""`nvlm finetune --task squad` without --version and without --preset (issue 16): the SQuAD
version comes from the file, and a document stride that fits data.seq_len is derived when the
user set none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import error_line, invoke, ok

FIXTURES = Path(__file__).parent / "fixtures"
SQUAD = FIXTURES / "squad"


@pytest.fixture(scope="module")
def pretrained(squad_contexts, tmp_path_factory) -> Path:
    """A tiny BERT (positions up to 512) pretrained 2 steps, with the fixture vocab."""
    root = tmp_path_factory.mktemp("finetune-defaults")
    ok(invoke("data", "pretraining", "--model", "bert", "--input", squad_contexts,
              "--vocab", SQUAD / "vocab-uncased.txt", "--out", root / "shards",
              "--seq-len", 64, "--max-predictions", 8, "--shards", 1, "--workers", 1))  # fmt: skip
    ok(invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", root / "shards",
              "--out", root / "p1", "--set", "model.size=tiny", "--steps", 2))  # fmt: skip
    return root / "p1"


def run_config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "data.doc_stride" in line]


def test_default_settings_derive_a_stride_that_fits_and_say_so(pretrained, tmp_path):
    # Defaults: seq 128, query 64 leave 61 document tokens; the default stride 128 does not fit.
    result = ok(invoke("finetune", "--model", "bert", "--task", "squad",
                       "--data", SQUAD / "tiny-v1.1.json", "--init", pretrained,
                       "--out", tmp_path / "run", "--epochs", 0.2, "--json"))  # fmt: skip
    assert json.loads(result.stdout)["steps"] >= 1
    assert notes(result.stderr) == [
        "note: data.doc_stride=30: the default 128 does not fit the 61 document tokens of "
        "data.seq_len=128 after a 64-token query (set data.doc_stride to choose another)"
    ]
    data = run_config(tmp_path / "run")["data"]
    assert (data["seq_len"], data["max_query_len"], data["doc_stride"]) == (128, 64, 30)


def test_a_presets_stride_is_fitted_to_a_shorter_seq_len(tmp_path):
    init = FIXTURES / "bert_tiny_hf"  # positions up to 64
    result = ok(invoke("finetune", "--model", "bert", "--data", SQUAD / "tiny-v1.1.json",
                       "--init", init, "--out", tmp_path / "run", "--preset", "cpu-fp32",
                       "--epochs", 0.2, "--set", "data.seq_len=64",
                       "--set", "data.max_query_len=24"))  # fmt: skip
    assert [n.split(":")[1] for n in notes(result.stderr)] == [
        " data.doc_stride=18"  # half of the 37-token window
    ]
    assert "the preset's 128" in notes(result.stderr)[0]
    assert run_config(tmp_path / "run")["data"]["doc_stride"] == 18


def test_a_stride_the_user_set_is_kept_and_refused_when_it_does_not_fit(pretrained, tmp_path):
    result = invoke("finetune", "--model", "bert", "--data", SQUAD / "tiny-v1.1.json",
                    "--init", pretrained, "--out", tmp_path / "run", "--epochs", 0.2,
                    "--set", "data.doc_stride=100")  # fmt: skip
    assert "leaves 61 document tokens" in error_line(result)
    assert not (tmp_path / "run").exists()
    result = ok(invoke("finetune", "--model", "bert", "--data", SQUAD / "tiny-v1.1.json",
                       "--init", pretrained, "--out", tmp_path / "run2", "--epochs", 0.2,
                       "--set", "data.doc_stride=40"))  # fmt: skip
    assert notes(result.stderr) == []
    assert run_config(tmp_path / "run2")["data"]["doc_stride"] == 40


def test_version_comes_from_the_training_file_without_version(pretrained, tmp_path):
    dev = SQUAD / "tiny-v2.0.json"
    result = ok(invoke("finetune", "--model", "bert", "--data", dev, "--init", pretrained,
                       "--out", tmp_path / "run", "--epochs", 0.2, "--eval-data", dev,
                       "--json"))  # fmt: skip
    summary = json.loads(result.stdout)
    assert run_config(tmp_path / "run")["data"]["squad_version"] == "2.0"
    assert summary["eval"]["version"] == "2.0" and "best_f1" in summary["eval"]
    assert "nvlm eval bert squad 2.0" in result.stderr
    # An explicit --version still has to agree with the file, before any run directory exists.
    result = invoke("finetune", "--model", "bert", "--data", dev, "--init", pretrained,
                    "--out", tmp_path / "run11", "--version", "1.1")  # fmt: skip
    assert "is SQuAD v2.0" in error_line(result) and "--version 2.0" in error_line(result)
    assert not (tmp_path / "run11").exists()
    ok(invoke("finetune", "--model", "bert", "--data", SQUAD / "tiny-v1.1.json",
              "--init", pretrained, "--out", tmp_path / "run1", "--epochs", 0.2))  # fmt: skip
    assert run_config(tmp_path / "run1")["data"]["squad_version"] == "1.1"
