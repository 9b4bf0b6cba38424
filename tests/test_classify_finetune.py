"""`nvlm finetune|eval --task classify` end to end on tiny BERT and ELECTRA fixtures (random
weights, the fixtures' character-level vocab) and our hand-written data sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import checkpoint_values, error_line, invoke, json_of, kill_after_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
BERT = FIXTURES / "bert_tiny_hf"
ELECTRA = FIXTURES / "electra_tiny_hf" / "discriminator"
GLUE = FIXTURES / "glue"
# The fixtures' max_position is 64; no dropout so that a tiny set is learnt in a few epochs.
# fmt: off
TINY = ["--preset", "cpu-fp32", "--set", "data.seq_len=32", "--set", "model.dropout=0",
        "--set", "model.attention_dropout=0", "--set", "train.lr=1e-3"]
# fmt: on

# Hand-written (ours): the sentiment is in one clear word or two.
POSITIVE = ["the film was good", "a great and happy day", "we love this song",
            "what a nice warm smile", "good food and good fun", "she was kind and happy",
            "this is great", "a lovely bright morning", "the best show we had",
            "happy people sing"]  # fmt: skip
NEGATIVE = ["the film was bad", "a sad and awful day", "we hate this noise",
            "what a cold ugly room", "bad food and bad news", "he was rude and angry",
            "this is awful", "a dull grey evening", "the worst show we had",
            "angry people shout"]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory) -> Path:
    rows = [{"text": t, "label": "positive"} for t in POSITIVE]
    rows += [{"text": t, "label": "negative"} for t in NEGATIVE]
    return write_jsonl(tmp_path_factory.mktemp("sentiment") / "train.jsonl", rows)


def finetune(data: Path, init: Path, out: Path, *args) -> dict:
    return json_of(invoke("finetune", "--task", "classify", "--data", data, "--init", init,
                          "--out", out, *TINY, *args, "--json"))  # fmt: skip


@pytest.mark.parametrize("init", [BERT, ELECTRA], ids=["bert", "electra"])
def test_tiny_encoder_learns_the_sentiment_set_to_100_percent(init, sentiment, tmp_path):
    summary = finetune(sentiment, init, tmp_path / "run", "--epochs", 40,
                       "--eval-data", sentiment)  # fmt: skip
    assert summary["stage"] == "classify"
    result = summary["eval"]
    assert result["accuracy"] == 100.0 and result["macro_f1"] == 100.0
    assert result["confusion_matrix"] == {"labels": ["positive", "negative"],
                                          "rows": [[10, 0], [0, 10]]}  # fmt: skip
    assert result["examples"] == 20 and result["inference_seq_per_s"] > 0
    assert result["latency_p50_ms"] > 0
    # The label set is kept with the run (its config.yaml), and `nvlm eval` reads it there.
    again = json_of(invoke("eval", "--task", "classify", "--init", tmp_path / "run",
                           "--data", sentiment, "--precision", "bf16", "--json"))  # fmt: skip
    assert again["precision"] == "bf16" and again["batch_size"] == 16
    assert again["accuracy"] >= 90.0


def test_a_pair_task_is_learnt_clearly_above_chance(tmp_path):
    # Paraphrase-like (ours): "same" when the second text says the first with other words.
    same = [
        ("the cat is big", "a large cat"),
        ("it is cold today", "today is cold"),
        ("he runs fast", "he is quick"),
        ("the sky is blue", "a blue sky"),
        ("we eat bread", "bread is what we eat"),
        ("she sings well", "her song is good"),
        ("the box is empty", "nothing is in the box"),
        ("they won", "they were the best"),
    ]
    other = [("the cat is big", "the dog is small"), ("it is cold today", "we swim in the sea"),
             ("he runs fast", "she reads a book"), ("the sky is blue", "the grass is wet"),
             ("we eat bread", "they drink milk"), ("she sings well", "he sleeps late"),
             ("the box is empty", "the car is red"), ("they won", "it rains at night")]  # fmt: skip
    rows = [{"text": a, "text_pair": b, "label": "same"} for a, b in same]
    rows += [{"text": a, "text_pair": b, "label": "other"} for a, b in other]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    summary = finetune(data, BERT, tmp_path / "run", "--epochs", 60, "--eval-data", data)
    assert summary["eval"]["accuracy"] >= 75.0


def test_regression_reaches_pearson_above_0_9(tmp_path):
    # The target counts the "good" words (0-3) in a sentence (ours).
    rows = []
    for start in ["the day", "our meal", "this film", "my walk", "the song"]:
        for k in range(4):
            rows.append({"text": start + " was" + " good" * k + (" ok" if k == 0 else ""),
                         "score": float(k)})  # fmt: skip
    data = write_jsonl(tmp_path / "scores.jsonl", rows)
    summary = finetune(data, BERT, tmp_path / "run", "--regression", "--label-field", "score",
                       "--epochs", 40, "--eval-data", data)  # fmt: skip
    assert summary["eval"]["pearson"] > 90.0 and "mse" in summary["eval"]


def test_glue_directory_end_to_end_with_both_mnli_dev_sets(tmp_path):
    summary = finetune(GLUE, BERT, tmp_path / "run", "--glue", "mnli", "--epochs", 2,
                       "--eval-data", GLUE / "MNLI")  # fmt: skip
    result = summary["eval"]
    assert result["glue_task"] == "mnli"
    assert set(result["dev_matched"]) >= {"accuracy"} and "accuracy" in result["dev_mismatched"]
    # A run fine-tuned on GLUE keeps its task: eval of one dev file needs no --glue.
    one = json_of(invoke("eval", "--task", "classify", "--init", tmp_path / "run",
                         "--data", GLUE / "MNLI" / "dev_mismatched.tsv", "--json"))  # fmt: skip
    assert one["glue_task"] == "mnli" and set(one) >= {"accuracy", "confusion_matrix"}
    assert one["examples"] == 2


def refused(tmp_path, *args) -> str:
    line = error_line(invoke("finetune", "--task", "classify", "--init", BERT,
                             "--out", tmp_path / "run", *TINY, *args))  # fmt: skip
    assert not (tmp_path / "run").exists()
    return line


def test_a_label_unknown_in_dev_is_refused_before_any_run(sentiment, tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": "so so", "label": "neutral"}])
    line = refused(tmp_path, "--data", sentiment, "--eval-data", dev)
    assert line == (
        f"nvlm: error: {dev} line 1: the label 'neutral' is not in the label set of "
        f"{sentiment} (positive, negative)"
    )


def test_a_label_set_of_one_is_refused(sentiment, tmp_path):
    line = refused(tmp_path, "--data", sentiment, "--labels", "positive")
    assert line.startswith("nvlm: error: the label set in --labels has 1 label ('positive'): "
                           "a classifier needs at least two")  # fmt: skip


def test_regression_with_text_labels_is_refused(sentiment, tmp_path):
    line = refused(tmp_path, "--data", sentiment, "--regression")
    assert line == (
        f"nvlm: error: {sentiment} line 1: the regression target 'positive' is not a finite number"
    )


def test_a_classifier_init_with_other_labels_is_refused(sentiment, tmp_path):
    line = error_line(invoke("finetune", "--task", "classify", "--data", sentiment,
                             "--init", FIXTURES / "bert_tiny_classify_hf",
                             "--out", tmp_path / "run", *TINY))  # fmt: skip
    assert line == (
        f"nvlm: error: --init {FIXTURES / 'bert_tiny_classify_hf'} is a classifier of labels "
        "(negative, neutral, positive) but the training data has labels (positive, negative) "
        "(fine-tune its encoder from the checkpoint it was fine-tuned from, or train on data "
        "with its labels)"
    )
    assert not (tmp_path / "run").exists()


def test_eval_of_an_encoder_without_a_head_is_refused(sentiment):
    line = error_line(invoke("eval", "--task", "classify", "--init", BERT, "--data", sentiment))
    assert line == (
        f"nvlm: error: --init {BERT} has no classification head (fine-tune it first: "
        "nvlm finetune --task classify ...)"
    )


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights(sentiment, tmp_path):
    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "nvlm", "finetune", "--task", "classify",
                "--data", str(sentiment), "--init", str(BERT), "--out", str(out), *TINY,
                "--epochs", 16, "--set", "train.checkpoint_every=10",
                "--eval-data", str(sentiment), "--eval-each-epoch"]  # fmt: skip

    command_str = lambda out: [str(a) for a in command(out)]  # noqa: E731
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(command_str(tmp_path / "full"), check=True, env=env, capture_output=True)
    kill_after_checkpoint(command_str(tmp_path / "killed"), tmp_path / "killed", env)
    rerun = subprocess.run(command_str(tmp_path / "killed") + ["--json"], check=True, env=env,
                           capture_output=True, text=True)  # fmt: skip
    summary = json.loads(rerun.stdout)
    assert 10 <= summary["resumed_from_step"] < 40 and summary["steps"] == 40
    full, resumed = checkpoint_values(tmp_path / "full"), checkpoint_values(tmp_path / "killed")
    assert full.keys() == resumed.keys()
    for key in full:
        np.testing.assert_allclose(resumed[key], full[key], atol=1e-6, rtol=0, err_msg=key)
    # The held-out figures of each epoch (3 steps: 20 examples / 8), logged once per step, are
    # the same whether the run was killed or not.
    full_evals, resumed_evals = (held_out_lines(tmp_path / name) for name in ("full", "killed"))
    assert [line["step"] for line in full_evals] == [*range(3, 40, 3), 40]
    assert resumed_evals == full_evals


def held_out_lines(run: Path) -> list[dict]:
    """RUN's metrics.jsonl lines of held-out figures, without their wall time."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "wall_time_s"}
            for line in lines if "eval_accuracy" in line]  # fmt: skip


def test_held_out_evaluation_each_epoch_is_logged_with_units(sentiment, tmp_path):
    summary = finetune(sentiment, BERT, tmp_path / "run", "--epochs", 2, "--eval-data", sentiment,
                       "--eval-each-epoch")  # fmt: skip
    evals = held_out_lines(tmp_path / "run")
    assert [line["step"] for line in evals] == [3, 5]  # each epoch (3 steps), and the last
    assert evals[-1]["eval_accuracy"] == summary["eval"]["accuracy"]  # what the end eval says
    assert evals[-1]["units"]["eval_accuracy"] == "%"
    assert list((tmp_path / "run" / "tb").iterdir())  # TensorBoard has them too


def test_evaluation_while_training_needs_eval_data(sentiment, tmp_path):
    for args in (["--eval-each-epoch"], ["--set", "train.eval_every=2"]):
        result = invoke("finetune", "--task", "classify", "--data", sentiment, "--init", BERT,
                        "--out", tmp_path / "run", *TINY, *args)  # fmt: skip
        assert result.exit_code == 2
        assert error_line(result) == (
            "nvlm: error: --eval-each-epoch / train.eval_every evaluate a held-out set while "
            "training: pass --eval-data DEV"
        )
        assert not (tmp_path / "run").exists()
    # SQuAD evaluates while training too: tests/test_squad_held_out.py.


def test_xla_and_accumulation_train_the_same_classifier(sentiment, tmp_path):
    # One process: XLA compiles the step, accumulation 2 x 4 is the global batch 8 of the
    # preset's batch 8; both are the shared trainer's, as SQuAD's and pretraining's.
    plain = finetune(sentiment, BERT, tmp_path / "plain", "--epochs", 2)
    xla = finetune(sentiment, BERT, tmp_path / "xla", "--epochs", 2, "--xla")
    accum = finetune(sentiment, BERT, tmp_path / "accum", "--epochs", 2,
                     "--set", "train.batch_size=4", "--set", "train.accumulation=2")  # fmt: skip
    assert xla["xla"] is True and plain["xla"] is False
    assert plain["steps"] == xla["steps"] == accum["steps"] == 5  # 20 examples x 2 / 8
    a, b, c = (checkpoint_values(tmp_path / name) for name in ("plain", "xla", "accum"))
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=1e-4, err_msg=name)
        np.testing.assert_allclose(c[name], a[name], atol=1e-4, err_msg=name)
    ev = json_of(invoke("eval", "--task", "classify", "--init", tmp_path / "xla",
                        "--data", sentiment, "--xla", "--json"))  # fmt: skip
    same = json_of(invoke("eval", "--task", "classify", "--init", tmp_path / "xla",
                          "--data", sentiment, "--no-xla", "--json"))  # fmt: skip
    assert ev["xla"] is True and same["xla"] is False
    assert ev["accuracy"] == same["accuracy"] and ev["confusion_matrix"] == same["confusion_matrix"]
