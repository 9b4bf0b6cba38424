"""`--model` from `--init` (issue 16): `nvlm.tasks.inference.model_of_init` for each kind of
source, and `nvlm eval` / `nvlm finetune` without `--model`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import error_line, invoke, ok

from nvlm.errors import UserError
from nvlm.tasks.inference import model_of_init

FIXTURES = Path(__file__).parent / "fixtures"
SQUAD = FIXTURES / "squad"
SOURCES = {
    "nvlm run": (FIXTURES / "before-architecture" / "run", "bert"),
    "nvlm checkpoint": (FIXTURES / "before-architecture" / "run" / "checkpoints" / "ckpt-2", "bert"),
    "hf bert": (FIXTURES / "bert_tiny_hf", "bert"),
    "hf bert export": (FIXTURES / "before-architecture" / "hf", "bert"),
    "google": (FIXTURES / "bert_tiny_google" / "bert_model.ckpt", "bert"),
    "hf electra": (FIXTURES / "electra_tiny_hf" / "discriminator", "electra"),
    "electra pair": (FIXTURES / "electra_tiny_hf", "electra"),
}  # fmt: skip


@pytest.mark.parametrize("kind", SOURCES)
def test_model_comes_from_each_kind_of_init(kind):
    src, model = SOURCES[kind]
    assert model_of_init(str(src), None) == model
    assert model_of_init(str(src), model.upper()) == model  # an explicit one that agrees


@pytest.mark.parametrize("kind", ["nvlm run", "hf bert", "google", "hf electra"])
def test_a_mismatching_explicit_model_is_one_line(kind):
    src, model = SOURCES[kind]
    other = "electra" if model == "bert" else "bert"
    with pytest.raises(UserError) as exc:
        model_of_init(str(src), other)
    assert str(exc.value) == (
        f"--model {other} does not match --init {src}, which is a {model} model "
        f"(drop --model, or pass --model {model})"
    )


def test_an_unknown_or_unnamed_hugging_face_model_is_refused(tmp_path):
    src = tmp_path / "roberta"
    shutil.copytree(FIXTURES / "bert_tiny_hf", src)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(UserError, match=r"is a Hugging Face 'roberta' model; nvlm reads bert"):
        model_of_init(str(src), None)
    del config["model_type"]
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"--model is required: cannot tell which model --init"):
        model_of_init(str(src), None)
    assert model_of_init(str(src), "bert") == "bert"  # then --model says it


def test_no_init_and_no_model_asks_for_model():
    with pytest.raises(UserError, match=r"^--model is required \(pass --model "):
        model_of_init(None, None)
    assert model_of_init(None, "Transformer_XL") == "transformer-xl"


def test_eval_scores_a_predictions_file_without_model(tmp_path):
    data = json.loads((SQUAD / "tiny-v1.1.json").read_text())
    preds = {
        qa["id"]: qa["answers"][0]["text"]
        for article in data["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
    }
    (tmp_path / "p.json").write_text(json.dumps(preds))
    result = ok(invoke("eval", "--task", "squad", "--data", SQUAD / "tiny-v1.1.json",
                       "--predictions", tmp_path / "p.json", "--json"))  # fmt: skip
    assert json.loads(result.stdout)["exact_match"] == 100.0


def test_eval_without_init_or_predictions_still_asks_for_init():
    result = invoke("eval", "--task", "squad", "--data", SQUAD / "tiny-v1.1.json")
    assert "--init is required to evaluate a model" in error_line(result)


def test_eval_refuses_a_mismatch_between_model_and_init_in_one_line(tmp_path):
    result = invoke("eval", "--model", "electra", "--task", "squad", "--init",
                    FIXTURES / "bert_tiny_hf", "--data", SQUAD / "tiny-v1.1.json",
                    "--out", tmp_path / "ev")  # fmt: skip
    assert "does not match --init" in error_line(result)
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("source", ["bert_tiny_google", "electra_tiny_hf/discriminator"])
def test_finetune_without_model_takes_it_from_init(source, tmp_path):
    init = FIXTURES / source
    if source == "bert_tiny_google":
        init = init / "bert_model.ckpt"
    result = ok(invoke("finetune", "--data", SQUAD / "tiny-v1.1.json", "--init", init,
                       "--out", tmp_path / "run", "--preset", "cpu-fp32", "--epochs", 0.2,
                       "--set", "data.seq_len=64", "--set", "data.doc_stride=16",
                       "--set", "data.max_query_len=24", "--json"))  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["model"] == ("bert" if source == "bert_tiny_google" else "electra")
    assert summary["task"] == "squad"
    # The fine-tuned run then identifies itself to eval.
    result = ok(invoke("eval", "--task", "squad", "--init", tmp_path / "run",
                       "--data", SQUAD / "tiny-v1.1.json", "--out", tmp_path / "ev",
                       "--json"))  # fmt: skip
    assert json.loads(result.stdout)["version"] == "1.1"
    assert (tmp_path / "ev" / "predictions.json").exists()


@pytest.mark.parametrize(
    ("name", "saved"), [("run", "features.jsonl"), ("hf", "features-hf.jsonl")]
)
def test_predict_without_model_takes_it_from_init(name, saved, tmp_path):
    fixtures = FIXTURES / "before-architecture"
    src = shutil.copytree(fixtures / name, tmp_path / name)
    result = ok(invoke("predict", "--init", src, "--task", "features",
                       "--text", "w109 w114 w117", "--pooled"))  # fmt: skip
    assert json.loads(result.stdout) == json.loads((fixtures / saved).read_text())


def test_predict_refuses_a_model_that_is_not_the_inits():
    run = FIXTURES / "before-architecture" / "run"
    result = invoke("predict", "--model", "electra", "--init", run, "--question", "Who?",
                    "--context", "Harry.")  # fmt: skip
    assert error_line(result).endswith(
        f"--model electra does not match --init {run}, which is a bert model "
        "(drop --model, or pass --model bert)"
    )
