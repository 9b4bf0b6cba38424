"""`nvlm finetune|eval|predict --model electra` for SQuAD: the joint beam-search head (and the
simple head) on a tiny ELECTRA and the hand-written SQuAD sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import error_line, invoke, ok

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
# tests/test_squad_cli.py's settings for BERT, unchanged (100 epochs for v1.1 suffice here).
QA_SETTINGS = ["--set", "data.seq_len=128", "--set", "data.doc_stride=64",
               "--set", "data.max_query_len=48", "--set", "model.dropout=0",
               "--set", "train.batch_size=8", "--set", "train.lr=3e-3",
               "--set", "train.warmup_proportion=0.05", "--set", "train.log_every=50"]  # fmt: skip


def questions(version: str = "1.1"):
    data = json.loads((FIXTURES / f"tiny-v{version}.json").read_text())
    return [(p["context"], q) for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]


@pytest.fixture(scope="module")
def pretrained(squad_contexts, tmp_path_factory) -> Path:
    """A tiny ELECTRA pretrained 10 steps on the fixture paragraphs, with the fixture vocab."""
    root = tmp_path_factory.mktemp("electra-squad-init")
    ok(invoke("data", "pretraining", "--model", "electra", "--input", squad_contexts,
              "--vocab", FIXTURES / "vocab-uncased.txt", "--out", root / "shards",
              "--seq-len", 64, "--shards", 1, "--workers", 1))  # fmt: skip
    ok(invoke("pretrain", "--model", "electra", "--preset", "cpu-fp32", "--data",
              root / "shards", "--out", root / "p1", "--set", "model.size=tiny",
              "--set", "data.max_predictions=8", "--steps", 10))  # fmt: skip
    return root / "p1"


@pytest.fixture(scope="module")
def squad_v11(pretrained, tmp_path_factory) -> tuple[Path, dict]:
    """Fine-tuned from the exported HF discriminator (RUN/hf/discriminator), joint head."""
    run = tmp_path_factory.mktemp("electra-squad-v11") / "run"
    result = ok(invoke("finetune", "--model", "electra", "--task", "squad", "--version", "1.1",
                       "--data", FIXTURES / "tiny-v1.1.json",
                       "--init", pretrained / "hf" / "discriminator", "--out", run,
                       "--preset", "cpu-fp32", "--epochs", 100, *QA_SETTINGS,
                       "--eval-data", FIXTURES / "tiny-v1.1.json", "--json"))  # fmt: skip
    return run, json.loads(result.stdout)


@pytest.mark.slow
def test_joint_head_reaches_exact_match_100(squad_v11):
    run, summary = squad_v11
    assert summary["model"] == "electra" and summary["stage"] == "squad"
    assert summary["eval"]["exact_match"] == 100.0 and summary["eval"]["f1"] == 100.0
    config = (run / "config.yaml").read_text()
    assert "qa_head: joint" in config and "layer_decay: 0.8" in config  # the preset's recipe
    nbest = json.loads((run / "eval" / "nbest_predictions.json").read_text())
    assert len(nbest) == 13 and all(1 <= len(v) <= 20 for v in nbest.values())
    entry = next(iter(nbest.values()))[0]
    assert entry["start_logit"] <= 0 and entry["end_logit"] <= 0  # log-probabilities
    assert summary["eval"]["latency_p99_ms"] > 0


@pytest.mark.slow
def test_eval_with_another_beam_and_predict(squad_v11, tmp_path):
    run, _ = squad_v11
    scores = json.loads(ok(invoke("eval", "--model", "electra", "--task", "squad", "--init", run,
                                  "--data", FIXTURES / "tiny-v1.1.json", "--out", tmp_path,
                                  "--beam-size", 2, "--json")).stdout)  # fmt: skip
    assert scores["exact_match"] == 100.0
    context, qa = questions()[0]
    answer = json.loads(ok(invoke("predict", "--model", "electra", "--init", run,
                                  "--question", qa["question"], "--context", context,
                                  "--top-k", 3, "--json")).stdout)  # fmt: skip
    assert answer["answer"] == qa["answers"][0]["text"]
    assert context[answer["start"] : answer["end"]] == answer["answer"]
    assert 1 <= len(answer["alternatives"]) <= 3
    # A JSONL pipeline: one answer per line, a bad line reported in place, exit 1.
    items = [{"id": q["id"], "question": q["question"], "context": c} for c, q in questions()[:3]]
    text = "\n".join([json.dumps(items[0]), "{broken", *map(json.dumps, items[1:])]) + "\n"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "nvlm", "predict", "--model", "electra",
                           "--init", str(run), "--input", "-"], input=text, text=True,
                          capture_output=True, env=env, timeout=120)  # fmt: skip
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and rows[1]["line"] == 2 and "error" in rows[1]
    gold = {q["id"]: q["answers"][0]["text"] for _, q in questions()}
    assert [r["answer"] for r in (rows[0], *rows[2:])] == [gold[i["id"]] for i in items]


@pytest.mark.slow
def test_v2_abstains_where_it_should(pretrained, tmp_path):
    result = ok(invoke("finetune", "--model", "electra", "--task", "squad", "--version", "2.0",
                       "--data", FIXTURES / "tiny-v2.0.json", "--init", pretrained,
                       "--out", tmp_path / "v2", "--preset", "cpu-fp32", "--epochs", 100,
                       *QA_SETTINGS, "--eval-data", FIXTURES / "tiny-v2.0.json", "--json"))  # fmt: skip
    scores = json.loads(result.stdout)["eval"]
    assert scores["NoAns_exact"] == 100.0 and scores["HasAns_exact"] == 100.0
    assert scores["null_threshold"] == -5.6  # the joint head's default
    assert "best_f1_thresh" in scores  # the calibrated threshold for this set
    assert "answerable_acc" in json.loads(result.stdout)["final"]
    impossible = [(c, q) for c, q in questions("2.0") if q.get("is_impossible")]
    context, qa = impossible[0]
    answer = json.loads(ok(invoke("predict", "--model", "electra", "--init", tmp_path / "v2",
                                  "--question", qa["question"], "--context", context,
                                  "--json")).stdout)  # fmt: skip
    assert answer["no_answer"] is True and answer["answer"] == ""


def test_simple_head_is_hugging_face_question_answering(pretrained, tmp_path):
    run = tmp_path / "simple"
    ok(invoke("finetune", "--model", "electra", "--task", "squad", "--data",
              FIXTURES / "tiny-v1.1.json", "--init", pretrained, "--out", run,
              "--preset", "cpu-fp32", "--epochs", 1, *QA_SETTINGS,
              "--set", "model.qa_head=simple"))  # fmt: skip
    assert "qa_head: simple" in (run / "config.yaml").read_text()
    ok(invoke("convert", run, tmp_path / "hf", "--model", "electra", "--to", "hf"))
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForQuestionAnswering"]
    # The HF directory answers exactly as the run (its head is read back: qa_head=simple).
    context, qa = questions()[1]
    answers = [
        json.loads(ok(invoke("predict", "--model", "electra", "--init", src, "--question",
                             qa["question"], "--context", context, "--json")).stdout)
        for src in (run, tmp_path / "hf")
    ]  # fmt: skip
    assert answers[0] == answers[1]


def test_layer_decay_follows_the_electra_variable_paths():
    from nvlm import resolve as resolve_mod
    from nvlm.plugins.electra.plugin import ElectraPlugin
    from nvlm.tasks.squad.task import layer_decay_multipliers

    cfg = resolve_mod.resolve(
        "electra", "squad", flags={"model.size": "tiny", "data.seq_len": 384}
    ).config
    model = ElectraPlugin().build(cfg, "squad")
    mult = dict(zip((v.path for v in model.trainable_variables),
                    layer_decay_multipliers(model, 2, 0.8), strict=True))  # fmt: skip
    assert mult["embeddings/word_embeddings/embeddings"] == pytest.approx(0.8**3)
    assert mult["embeddings_project/kernel"] == pytest.approx(0.8**3)
    assert mult["layer_0/attention/qkv/kernel"] == pytest.approx(0.8**2)
    assert mult["layer_1/output/kernel"] == pytest.approx(0.8)
    assert mult["joint_span_head/end/kernel"] == 1.0


def test_beam_size_below_one_is_a_one_line_error(pretrained, tmp_path):
    line = error_line(invoke("finetune", "--model", "electra", "--data",
                             FIXTURES / "tiny-v1.1.json", "--init", pretrained,
                             "--out", tmp_path / "run", "--preset", "cpu-fp32",
                             "--beam-size", 0))  # fmt: skip
    assert "--beam-size 0 must be at least 1" in line
    line = error_line(invoke("predict", "--model", "electra", "--init", pretrained,
                             "--question", "Who?", "--context", "Someone.", "--beam-size", -1))  # fmt: skip
    assert "--beam-size -1" in line


def test_init_without_a_qa_head_is_refused_for_eval(pretrained):
    line = error_line(invoke("eval", "--model", "electra", "--task", "squad", "--init",
                             pretrained, "--data", FIXTURES / "tiny-v1.1.json"))  # fmt: skip
    assert "question-answering head" in line
