"""SQuAD inference that honours the run (issue 16): `nvlm eval --task squad` and
`nvlm finetune --eval-data` take precision, XLA, inference batch and decoding from the fine-tuned
run or the preset, each overridable by a flag or --set, and say in their summary what they used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import invoke, ok

FIXTURES = Path(__file__).parent / "fixtures"
SQUAD = FIXTURES / "squad"
DEV = SQUAD / "tiny-v1.1.json"
# tests/test_squad_cli.py's settings: 150 epochs reach EM 100 on the hand-written set.
QA_SETTINGS = ["--set", "data.seq_len=128", "--set", "data.doc_stride=64",
               "--set", "data.max_query_len=48", "--set", "model.dropout=0",
               "--set", "model.attention_dropout=0",
               "--set", "train.batch_size=8", "--set", "train.lr=3e-3",
               "--set", "train.warmup_proportion=0.05", "--set", "train.log_every=50"]  # fmt: skip


@pytest.fixture(scope="module")
def squad_run(squad_contexts, tmp_path_factory) -> tuple[Path, dict]:
    """A tiny BERT pretrained on the fixture paragraphs, fine-tuned until EM 100 (cpu-fp32:
    eval batch 16), with the finetune summary."""
    root = tmp_path_factory.mktemp("squad-settings")
    ok(invoke("data", "pretraining", "--model", "bert", "--input", squad_contexts,
              "--vocab", SQUAD / "vocab-uncased.txt", "--out", root / "shards",
              "--seq-len", 64, "--max-predictions", 8, "--shards", 1, "--workers", 1))  # fmt: skip
    ok(invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", root / "shards",
              "--out", root / "p1", "--set", "model.size=tiny", "--steps", 10))  # fmt: skip
    result = ok(invoke("finetune", "--model", "bert", "--task", "squad", "--data", DEV,
                       "--init", root / "p1", "--out", root / "run", "--preset", "cpu-fp32",
                       "--epochs", 150, *QA_SETTINGS, "--eval-data", DEV, "--json"))  # fmt: skip
    return root / "run", json.loads(result.stdout)


def squad_eval(init: Path, out: Path, *args):
    """`nvlm eval --task squad` of `init` on the dev set: (JSON result, stderr, predictions,
    n-best lists)."""
    result = ok(invoke("eval", "--model", "bert", "--task", "squad", "--init", init,
                       "--data", DEV, "--out", out, "--json", *args))  # fmt: skip
    preds = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    return json.loads(result.stdout), result.stderr, preds, nbest


@pytest.mark.slow
def test_finetune_eval_data_summary_names_the_runs_precision_xla_and_batch(squad_run):
    _, summary = squad_run
    ev = summary["eval"]
    assert ev["exact_match"] == 100.0
    assert (ev["precision"], ev["xla"], ev["batch_size"]) == ("fp32", False, 16)


@pytest.mark.slow
def test_eval_in_bf16_and_with_xla_gives_the_fp32_answers(squad_run, tmp_path):
    run, _ = squad_run
    fp32, _, fp32_preds, fp32_nbest = squad_eval(run, tmp_path / "fp32")
    bf16, bf16_err, bf16_preds, bf16_nbest = squad_eval(
        run, tmp_path / "bf16", "--precision", "bf16"
    )
    xla, xla_err, xla_preds, _ = squad_eval(run, tmp_path / "xla", "--xla")
    assert fp32["precision"] == "fp32" and fp32["xla"] is False
    assert bf16["precision"] == "bf16" and xla["xla"] is True
    assert fp32["exact_match"] == bf16["exact_match"] == xla["exact_match"] == 100.0
    assert bf16_preds == fp32_preds and xla_preds == fp32_preds
    # The precision was applied, not only reported: bf16 logits are not the fp32 ones.
    qid = next(iter(fp32_nbest))
    assert bf16_nbest[qid][0]["start_logit"] != fp32_nbest[qid][0]["start_logit"]
    table = {line.split("│")[1].strip(): line.split("│")[2].strip()
             for line in bf16_err.splitlines() if line.count("│") == 3}  # fmt: skip
    assert table["precision"] == "bf16" and table["XLA"] == "no"
    assert "yes" in [line.split("│")[2].strip() for line in xla_err.splitlines() if "XLA" in line]


@pytest.mark.slow
def test_eval_takes_the_runs_batch_unless_batch_size_is_given(squad_run, tmp_path):
    run, _ = squad_run
    assert squad_eval(run, tmp_path / "a")[0]["batch_size"] == 16  # the run's (cpu-fp32 squad)
    assert squad_eval(run, tmp_path / "b", "--batch-size", 4)[0]["batch_size"] == 4
    result = squad_eval(run, tmp_path / "c", "--set", "data.eval_batch_size=5")[0]
    assert result["batch_size"] == 5
    # A preset gives its squad stage's precision and batch instead of the run's.
    preset = squad_eval(run, tmp_path / "d", "--preset", "cpu-bf16")[0]
    assert (preset["precision"], preset["batch_size"]) == ("bf16", 16)


@pytest.mark.slow
def test_set_max_answer_len_changes_berts_answers(squad_run, tmp_path):
    run, _ = squad_run
    _, _, full, _ = squad_eval(run, tmp_path / "full")
    short, _, preds, _ = squad_eval(run, tmp_path / "short", "--set", "model.max_answer_len=2")
    assert short["exact_match"] < 100.0
    assert preds != full
    longer = [q for q in full if len(full[q].split()) > 2]
    assert longer and all(len(preds[q].split()) <= 2 for q in longer)


@pytest.mark.slow
def test_decoding_settings_are_read_back_from_the_finetuned_run(squad_run, tmp_path):
    run, _ = squad_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["model"]["max_answer_len"] = 2
    config["model"]["n_best"] = 3
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result, _, preds, nbest = squad_eval(copy, tmp_path / "ev")
    assert result["exact_match"] < 100.0
    assert all(len(text.split()) <= 2 for text in preds.values())
    assert all(len(entries) <= 3 for entries in nbest.values())
    # --set still wins over the run.
    again, _, _, _ = squad_eval(copy, tmp_path / "ev2", "--set", "model.max_answer_len=30")
    assert again["exact_match"] == 100.0


def test_inference_loads_the_model_in_the_runs_precision_unless_overridden(tmp_path):
    from nvlm import registry
    from nvlm.tasks.inference import load_model

    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "before-architecture" / "run", run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"]["precision"] = "bf16"
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    plugin = registry.get("bert")
    cfg, model = load_model(plugin, str(run), "features")
    assert cfg.train.precision == "bf16" and model.dtype_policy.compute_dtype == "bfloat16"
    cfg, model = load_model(plugin, str(run), "features", sets=["train.precision=fp32"])
    assert cfg.train.precision == "fp32" and model.dtype_policy.compute_dtype == "float32"
    cfg, _ = load_model(plugin, str(run), "features", flags={"train.precision": "fp32"})
    assert cfg.train.precision == "fp32"


@pytest.mark.slow
def test_dev_set_features_are_cached_per_user_and_never_inside_init(
    squad_run, tmp_path, monkeypatch
):
    run, _ = squad_run
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    first, _, preds, _ = squad_eval(run, tmp_path / "a")
    second, _, again, _ = squad_eval(run, tmp_path / "b")
    assert (first["features_from_cache"], second["features_from_cache"]) == (False, True)
    assert again == preds and second["exact_match"] == first["exact_match"]
    assert len(list((tmp_path / "cache" / "nvlm" / "squad").glob("squad-features-*.npz"))) == 1
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # --init untouched
    # Other lengths are other features: a new cache file, not a stale hit.
    third, *_ = squad_eval(run, tmp_path / "c", "--set", "data.doc_stride=32")
    assert third["features_from_cache"] is False


@pytest.mark.slow
def test_predict_in_bf16_and_with_xla_gives_the_fp32_answer(squad_run):
    run, _ = squad_run
    paragraph = json.loads(DEV.read_text())["data"][0]["paragraphs"][0]
    qa = paragraph["qas"][0]
    ask = ["predict", "--init", run, "--question", qa["question"],
           "--context", paragraph["context"], "--json"]  # fmt: skip
    fp32 = json.loads(ok(invoke(*ask)).stdout)
    bf16 = json.loads(ok(invoke(*ask, "--precision", "bf16")).stdout)
    xla = json.loads(ok(invoke(*ask, "--xla", "--set", "model.max_answer_len=30")).stdout)
    assert fp32["answer"] == bf16["answer"] == xla["answer"] == qa["answers"][0]["text"]
    assert bf16["score"] != fp32["score"]  # bf16 logits: the precision was applied
    short = json.loads(ok(invoke(*ask, "--set", "model.max_answer_len=1")).stdout)
    assert len(short["answer"].split()) == 1  # --set reaches predict's decoding
