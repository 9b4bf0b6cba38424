"""`nvlm finetune|eval|predict` for SQuAD on a tiny BERT and our hand-written SQuAD sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import error_line, invoke, ok

# The nvlm command lines below are laid out by hand, flag next to value.
# fmt: off
FIXTURES = Path(__file__).parent / "fixtures" / "squad"
QA_SETTINGS = ["--set", "data.seq_len=128", "--set", "data.doc_stride=64",
               "--set", "data.max_query_len=48", "--set", "model.dropout=0",
               "--set", "model.attention_dropout=0",
               "--set", "train.batch_size=8", "--set", "train.lr=3e-3",
               "--set", "train.warmup_proportion=0.05", "--set", "train.log_every=50"]


@pytest.fixture(scope="module")
def pretrained(squad_contexts, tmp_path_factory) -> Path:
    """A tiny BERT briefly pretrained on the fixture paragraphs, with the fixture vocab."""
    root = tmp_path_factory.mktemp("squad-init")
    ok(invoke("data", "pretraining", "--model", "bert", "--input", squad_contexts,
              "--vocab", FIXTURES / "vocab-uncased.txt", "--out", root / "shards",
              "--seq-len", 64, "--max-predictions", 8, "--shards", 1, "--workers", 1))
    ok(invoke("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", root / "shards",
              "--out", root / "p1", "--set", "model.size=tiny", "--steps", 10))
    return root / "p1"


@pytest.fixture(scope="module")
def squad_v11(pretrained, tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("squad-v11") / "run"
    result = ok(invoke("finetune", "--model", "bert", "--task", "squad", "--version", "1.1",
                       "--data", FIXTURES / "tiny-v1.1.json", "--init", pretrained,
                       "--out", run, "--preset", "cpu-fp32", "--epochs", 150, *QA_SETTINGS,
                       "--eval-data", FIXTURES / "tiny-v1.1.json", "--json"))
    return run, json.loads(result.stdout)


@pytest.mark.slow
def test_finetune_reaches_exact_match_100(squad_v11):
    run, summary = squad_v11
    assert summary["task"] == "squad" and summary["stage"] == "squad"
    assert summary["eval"]["exact_match"] == 100.0 and summary["eval"]["f1"] == 100.0
    preds = json.loads((run / "eval" / "predictions.json").read_text())
    nbest = json.loads((run / "eval" / "nbest_predictions.json").read_text())
    assert len(preds) == 13 and set(nbest) == set(preds)
    assert all(len(v) <= 20 for v in nbest.values())
    for key in ("latency_p50_ms", "latency_p99_ms", "inference_seq_per_s", "sequences_processed"):
        assert summary["eval"][key] > 0


@pytest.mark.slow
def test_eval_command_and_scoring_a_predictions_file(squad_v11, tmp_path):
    run, _ = squad_v11
    result = ok(invoke("eval", "--model", "bert", "--task", "squad", "--init", run,
                       "--data", FIXTURES / "tiny-v1.1.json", "--out", tmp_path / "ev", "--json"))
    scores = json.loads(result.stdout)
    assert scores["exact_match"] == 100.0
    assert "latency p99 (ms/batch)" in result.stderr
    # The same file scored without a model, like the official script.
    result = ok(invoke("eval", "--model", "bert", "--task", "squad", "--data",
                       FIXTURES / "tiny-v1.1.json", "--predictions",
                       tmp_path / "ev" / "predictions.json", "--json"))
    assert json.loads(result.stdout)["exact_match"] == 100.0


@pytest.mark.slow
def test_predict_question_and_context(squad_v11):
    run, _ = squad_v11
    data = json.loads((FIXTURES / "tiny-v1.1.json").read_text())
    para = data["data"][0]["paragraphs"][0]
    qa = para["qas"][0]
    result = ok(invoke("predict", "--model", "bert", "--init", run, "--question", qa["question"],
                       "--context", para["context"], "--json", "--top-k", 3))
    answer = json.loads(result.stdout)
    assert answer["answer"] == qa["answers"][0]["text"]
    assert para["context"][answer["start"]:answer["end"]] == answer["answer"]
    assert 1 <= len(answer["alternatives"]) <= 3
    human = ok(invoke("predict", "--model", "bert", "--init", run, "--question", qa["question"],
                      "--context", para["context"]))
    assert human.stdout.strip() == qa["answers"][0]["text"]


@pytest.mark.slow
def test_jsonl_pipeline_streams_and_reports_bad_lines(squad_v11):
    run, _ = squad_v11
    data = json.loads((FIXTURES / "tiny-v1.1.json").read_text())
    para = data["data"][0]["paragraphs"][0]
    questions = [{"id": q["id"], "question": q["question"], "context": para["context"]}
                 for q in para["qas"]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nvlm", "predict", "--model", "bert", "--init", str(run),
         "--input", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=env)
    # Streaming: the first answer arrives while stdin is still open.
    proc.stdin.write(json.dumps(questions[0]) + "\n")
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    assert first["id"] == questions[0]["id"] and first["answer"]
    proc.stdin.write("{not json\n")
    for q in questions[1:]:
        proc.stdin.write(json.dumps(q) + "\n")
    proc.stdin.close()
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=120) == 1  # a line failed
    assert rest[0]["line"] == 2 and "error" in rest[0]
    assert [r["id"] for r in rest[1:]] == [q["id"] for q in questions[1:]]
    gold = {q["id"]: q["answers"][0]["text"] for q in para["qas"]}
    assert all(r["answer"] == gold[r["id"]] for r in [first, *rest[1:]])


@pytest.mark.slow
def test_v2_learns_to_abstain(pretrained, tmp_path):
    result = ok(invoke("finetune", "--model", "bert", "--task", "squad", "--version", "2.0",
                       "--data", FIXTURES / "tiny-v2.0.json", "--init", pretrained,
                       "--out", tmp_path / "v2", "--preset", "cpu-fp32", "--epochs", 100,
                       *QA_SETTINGS, "--eval-data", FIXTURES / "tiny-v2.0.json", "--json"))
    scores = json.loads(result.stdout)["eval"]
    assert scores["NoAns_exact"] == 100.0 and scores["HasAns_exact"] == 100.0
    null_odds = json.loads((tmp_path / "v2" / "eval" / "null_odds.json").read_text())
    assert len(null_odds) == 10
    data = json.loads((FIXTURES / "tiny-v2.0.json").read_text())
    impossible = next(q for a in data["data"] for p in a["paragraphs"] for q in p["qas"]
                      if q.get("is_impossible"))
    context = next(p["context"] for a in data["data"] for p in a["paragraphs"]
                   if impossible in p["qas"])
    answer = json.loads(ok(invoke("predict", "--model", "bert", "--init", tmp_path / "v2",
                                  "--question", impossible["question"], "--context", context,
                                  "--json")).stdout)
    assert answer["no_answer"] is True and answer["answer"] == ""


# --- bad input --------------------------------------------------------------------------


def test_malformed_training_json_names_line_and_column(pretrained, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.1",\n "data": [ {"title": "x",, } ]}')
    line = error_line(invoke("finetune", "--model", "bert", "--data", bad, "--init", pretrained,
                             "--out", tmp_path / "run", "--preset", "cpu-fp32"))
    assert "line 2" in line and "column" in line


def test_wrong_answer_start_names_the_question(pretrained, tmp_path):
    data = json.loads((FIXTURES / "tiny-v1.1.json").read_text())
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    qa["answers"][0]["answer_start"] += 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    line = error_line(invoke("finetune", "--model", "bert", "--data", bad, "--init", pretrained,
                             "--out", tmp_path / "run", "--preset", "cpu-fp32"))
    assert qa["id"] in line


def test_init_without_a_qa_head_is_refused_for_eval_and_predict(pretrained, tmp_path):
    line = error_line(invoke("eval", "--model", "bert", "--task", "squad", "--init", pretrained,
                             "--data", FIXTURES / "tiny-v1.1.json"))
    assert "question-answering head" in line
    line = error_line(invoke("predict", "--model", "bert", "--init", pretrained,
                             "--question", "Who?", "--context", "Someone."))
    assert "question-answering head" in line


def test_empty_context_is_an_error(pretrained):
    line = error_line(invoke("predict", "--model", "bert", "--init", pretrained,
                             "--task", "squad", "--question", "Who?", "--context", "  "))
    assert "context" in line


def test_long_question_is_truncated_with_one_warning(pretrained, tmp_path):
    data = json.loads((FIXTURES / "tiny-v1.1.json").read_text())
    result = ok(invoke("finetune", "--model", "bert", "--data", FIXTURES / "tiny-v1.1.json",
                       "--init", pretrained, "--out", tmp_path / "run", "--preset", "cpu-fp32",
                       "--epochs", 0.5, "--set", "data.seq_len=128", "--set", "data.doc_stride=64",
                       "--set", "data.max_query_len=8"))
    warnings = [x for x in result.stderr.splitlines() if "truncated" in x]
    assert len(warnings) == 1
    assert data  # the set has long questions (see fixtures/squad/README.md)


def test_stream_batches_does_not_wait_for_a_full_batch():
    from queue import Queue

    from nvlm.tasks.pipeline import stream_batches

    q: Queue = Queue()

    def items():
        while True:
            item = q.get()
            if item is None:
                return
            yield item

    q.put(1)
    batches = stream_batches(items(), batch_size=8)
    t0 = time.time()
    assert next(batches) == [1]  # returned although 7 more could fit
    assert time.time() - t0 < 5
    q.put(2)
    q.put(3)
    time.sleep(0.2)
    q.put(None)
    assert [x for b in batches for x in b] == [2, 3]


@pytest.mark.parametrize("source", ["bert_tiny_hf", "bert_tiny_google"])
def test_finetune_accepts_hugging_face_and_google_checkpoints(source, tmp_path):
    init = Path(__file__).parent / "fixtures" / source
    if source == "bert_tiny_google":
        init = init / "bert_model.ckpt"
    result = ok(invoke("finetune", "--model", "bert", "--data", FIXTURES / "tiny-v1.1.json",
                       "--init", init, "--out", tmp_path / "run", "--preset", "cpu-fp32",
                       "--epochs", 0.2, "--set", "data.seq_len=64", "--set", "data.doc_stride=16",
                       "--set", "data.max_query_len=24", "--json"))
    summary = json.loads(result.stdout)
    assert summary["steps"] >= 1 and summary["task"] == "squad"
    assert "span head" in " ".join(result.stderr.split())  # none in the checkpoint: a warning
    assert (tmp_path / "run" / "vocab.txt").exists()
