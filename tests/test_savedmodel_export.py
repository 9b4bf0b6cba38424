"""`nvlm convert RUN DST --to savedmodel` (issue 16, docs/serving.md): the export is loaded back
with `tf.saved_model.load` and its `serving_default` signature answers as nvlm's own model does.
No TF Serving or Triton runs here; the Triton config is parsed and checked against the
signature."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import error_line, invoke, ok

from nvlm import registry
from nvlm.tasks.inference import load_model

FIXTURES = Path(__file__).parent / "fixtures"
SQUAD = FIXTURES / "squad" / "tiny-v1.1.json"
# A SQuAD fine-tuning of the tiny HF fixtures (max_position 64) for a few steps: the weights
# need not answer well, only be a run with a question-answering head.
QA = ["--task", "squad", "--data", SQUAD, "--preset", "cpu-fp32", "--epochs", "0.15",
      "--set", "data.seq_len=64", "--set", "data.max_query_len=24",
      "--set", "data.doc_stride=24", "--set", "train.batch_size=8"]  # fmt: skip
TXL = ["--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "data.seq_len=8",
       "--set", "model.mem_len=12", "--set", "train.batch_size=4", "--set", "train.log_every=1",
       "--steps", 2]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory, txl_corpus) -> dict[str, Path]:
    """Tiny runs: BERT and ELECTRA (joint head) fine-tuned on SQuAD, a BERT converted from the
    HF fixture (features) and a Transformer-XL language model."""
    root = tmp_path_factory.mktemp("savedmodel-runs")
    ok(invoke("finetune", "--init", FIXTURES / "bert_tiny_hf", "--out", root / "bert-squad", *QA))
    ok(invoke("finetune", "--init", FIXTURES / "electra_tiny_hf", "--out", root / "electra-squad",
              *QA))  # fmt: skip
    ok(invoke("convert", FIXTURES / "bert_tiny_hf", root / "bert", "--to", "nvlm"))
    ok(invoke("pretrain", "--model", "transformer-xl", "--data", txl_corpus,
              "--out", root / "txl", *TXL))  # fmt: skip
    return {p.name: p for p in root.iterdir()}


def export(src: Path, dst: Path, *args) -> dict:
    result = ok(invoke("convert", src, dst, "--to", "savedmodel", "--json", *args))
    return json.loads(result.stdout)


def serve(dst: Path):
    return tf.saved_model.load(str(dst / "1")).signatures["serving_default"]


def encoder_batch(rows: int, seq: int = 64, vocab: int = 96) -> dict[str, tf.Tensor]:
    """Questions and contexts of random ids: [CLS] q [SEP] c [SEP] then padding, per row."""
    rng = np.random.default_rng(rows)
    ids = rng.integers(5, vocab, (rows, seq)).astype(np.int32)
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for r in range(rows):
        n = int(rng.integers(seq // 2, seq))
        mask[r, :n] = 1
        segments[r, 10:n] = 1
        ids[r, n:] = 0
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


def nvlm_outputs(model_name: str, run: Path, task: str, batch: dict, precision="fp32") -> dict:
    _, model = load_model(registry.get(model_name), str(run), task,
                          flags={"train.precision": precision})  # fmt: skip
    out = model({k: tf.constant(v) for k, v in batch.items()}, training=False)
    return {k: np.asarray(tf.cast(v, tf.float32) if v.dtype.is_floating else v)
            for k, v in out.items() if k != "hidden_states"}  # fmt: skip


def assert_close(served: dict, ours: dict, atol: float) -> None:
    assert set(served) == set(ours)
    for name, value in ours.items():
        np.testing.assert_allclose(np.asarray(served[name]), value, atol=atol, err_msg=name)


def parse_pbtxt(text: str) -> dict:
    """name -> (data_type, dims) of config.pbtxt's inputs and outputs, and max_batch_size."""
    entries = re.findall(r'name: "(\w+)"\s+data_type: (\w+)\s+dims: \[ ([\d, -]*) \]', text)
    tensors = {n: (t, [int(d) for d in dims.split(",")]) for n, t, dims in entries}
    return {"max_batch_size": int(re.search(r"max_batch_size: (\d+)", text)[1]), **tensors}


# -- round trips ------------------------------------------------------------------------------
@pytest.mark.slow
def test_bert_squad_export_answers_as_nvlm_with_batch_1_and_3(runs, tmp_path):
    summary = export(runs["bert-squad"], tmp_path / "sm")
    assert summary["task"] == "squad" and summary["batch_size"] == "dynamic"
    assert summary["seq_len"] == 64 and set(summary["outputs"]) == {"start_logits", "end_logits"}
    fn = serve(tmp_path / "sm")
    for rows in (1, 3):
        batch = encoder_batch(rows)
        served = fn(**{k: tf.constant(v) for k, v in batch.items()})
        assert_close(served, nvlm_outputs("bert", runs["bert-squad"], "squad", batch), 1e-5)


@pytest.mark.slow
def test_electra_joint_head_export_gives_the_beam_and_answerability(runs, tmp_path):
    summary = export(runs["electra-squad"], tmp_path / "sm", "--task", "squad")
    assert list(summary["outputs"]) == ["start_top_log_probs", "start_top_index",
                                        "end_top_log_probs", "end_top_index",
                                        "answerable_logit"]  # fmt: skip
    assert summary["outputs"]["end_top_index"] == {"dtype": "int32", "shape": [-1, 4, 4]}
    batch = encoder_batch(3)
    served = serve(tmp_path / "sm")(**{k: tf.constant(v) for k, v in batch.items()})
    assert_close(served, nvlm_outputs("electra", runs["electra-squad"], "squad", batch), 1e-5)


@pytest.mark.slow
def test_bert_features_export_gives_sequence_and_pooled_output(runs, tmp_path):
    summary = export(runs["bert"], tmp_path / "sm", "--seq-len", 32)
    assert summary["task"] == "features" and summary["seq_len"] == 32
    batch = encoder_batch(2, seq=32)
    served = serve(tmp_path / "sm")(**{k: tf.constant(v) for k, v in batch.items()})
    assert set(served) == {"sequence_output", "pooled_output"}
    assert_close(served, nvlm_outputs("bert", runs["bert"], "features", batch), 1e-5)


@pytest.mark.slow
def test_transformer_xl_export_carries_memories_across_segments(runs, tmp_path):
    summary = export(runs["txl"], tmp_path / "sm")
    assert summary["task"] == "lm" and summary["seq_len"] == 8
    assert summary["inputs"]["memories"]["shape"][2] == 12  # the run's mem_len
    fn = serve(tmp_path / "sm")
    _, model = load_model(registry.get("transformer-xl"), str(runs["txl"]), "lm",
                          flags={"model.mem_len": 12})  # fmt: skip
    ids = np.random.default_rng(0).integers(0, model.softmax.vocab_size, (2, 16)).astype(np.int32)
    memory = model.empty_memory(2, 12)
    served_memory = tf.zeros_like(memory)
    valid = tf.zeros([2], tf.int32)
    for segment in range(2):
        tokens = tf.constant(ids[:, segment * 8 : (segment + 1) * 8])
        hidden, memory = model(tokens, memory, valid=min(segment * 8, 12), training=False)
        ours = tf.reshape(model.log_probs(tf.reshape(hidden, [-1, model.d_model])), [2, 8, -1])
        out = fn(tokens=tokens, memories=served_memory, mem_valid=valid)
        np.testing.assert_allclose(out["log_probs"].numpy(), ours.numpy(), atol=1e-5)
        np.testing.assert_allclose(out["new_memories"].numpy(), memory.numpy(), atol=1e-5)
        served_memory, valid = out["new_memories"], out["new_mem_valid"]
        assert valid.numpy().tolist() == [min((segment + 1) * 8, 12)] * 2
    assert (tmp_path / "sm" / "vocab.txt").read_bytes() == (runs["txl"] / "vocab.txt").read_bytes()


@pytest.mark.slow
def test_fixed_batch_size_refuses_another_batch(runs, tmp_path):
    summary = export(runs["bert-squad"], tmp_path / "sm", "--batch-size", 2)
    assert summary["inputs"]["input_ids"]["shape"] == [2, 64]
    fn = serve(tmp_path / "sm")
    assert (
        fn(**{k: tf.constant(v) for k, v in encoder_batch(2).items()})["start_logits"].shape[0] == 2
    )
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        fn(**{k: tf.constant(v) for k, v in encoder_batch(3).items()})
    # Triton: a fixed batch is max_batch_size 0 and the batch dimension in dims.
    config = parse_pbtxt((tmp_path / "sm" / "config.pbtxt").read_text())
    assert config["max_batch_size"] == 0 and config["input_ids"] == ("TYPE_INT32", [2, 64])


@pytest.mark.slow
def test_bf16_export_is_within_5e_2_of_fp32(runs, tmp_path):
    export(runs["bert-squad"], tmp_path / "sm", "--precision", "bf16")
    batch = encoder_batch(3)
    served = serve(tmp_path / "sm")(**{k: tf.constant(v) for k, v in batch.items()})
    assert served["start_logits"].dtype == tf.float32
    ours = nvlm_outputs("bert", runs["bert-squad"], "squad", batch)
    assert_close(served, ours, 5e-2)
    # bf16 was applied, not only named: the logits are not fp32's.
    assert not np.allclose(served["start_logits"].numpy(), ours["start_logits"], atol=1e-6)


# -- files -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_layout_tokenizer_files_and_triton_config_match_the_signature(runs, tmp_path):
    dst = tmp_path / "bert-qa"
    export(runs["bert-squad"], dst)
    for name in ("1/saved_model.pb", "1/variables/variables.index", "vocab.txt",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):  # fmt: skip
        assert (dst / name).is_file(), name
    assert (dst / "vocab.txt").read_bytes() == (runs["bert-squad"] / "vocab.txt").read_bytes()
    assert json.loads((dst / "tokenizer_config.json").read_text())["do_lower_case"] is True
    assert oct((dst / "1" / "saved_model.pb").stat().st_mode & 0o777) == "0o644"
    assert oct((dst / "1").stat().st_mode & 0o777) == "0o755"
    text = (dst / "config.pbtxt").read_text()
    assert 'name: "bert-qa"' in text and 'platform: "tensorflow_savedmodel"' in text
    config = parse_pbtxt(text)
    fn = serve(dst)
    inputs = fn.structured_input_signature[1]
    assert config["max_batch_size"] == 16  # cpu-fp32's inference batch, the run's
    for name, spec in inputs.items():
        assert config[name] == ("TYPE_INT32", spec.shape.as_list()[1:])
    for name, spec in fn.structured_outputs.items():
        assert config[name] == ("TYPE_FP32", spec.shape.as_list()[1:])
    assert set(config) - {"max_batch_size"} == set(inputs) | set(fn.structured_outputs)


# -- refusals ----------------------------------------------------------------------------------
def test_an_existing_directory_nvlm_did_not_write_is_refused_and_kept(tmp_path):
    dst = tmp_path / "models"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine\n")
    for extra in ((), ("--overwrite",)):
        line = error_line(invoke("convert", FIXTURES / "bert_tiny_hf", dst, "--to", "savedmodel",
                                 *extra))  # fmt: skip
        assert str(dst) in line and ("--overwrite" in line or "not one" in line)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
    assert (dst / "keep.txt").read_text() == "mine\n"


def test_a_failure_midway_leaves_no_destination(tmp_path, monkeypatch):
    import nvlm.convert.triton as triton

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(triton, "write_triton_config", fail)
    result = invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "sm", "--to", "savedmodel",
                    "--seq-len", 64)  # fmt: skip
    line = error_line(result, code=1)
    assert line.startswith(f"nvlm: error: no space left on the device writing {tmp_path / 'sm'}")
    assert not (tmp_path / "sm").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left either


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--task", "classify"], "has no classification head (classifier, output_weights): "
                                 "classify needs a fine-tuned classifier (nvlm finetune --task "
                                 "classify, or a Hugging Face *ForSequenceClassification "
                                 "directory)"),
        (["--task", "lm"], "--task lm is not a task BERT exports (use --task features|squad|classify)"),
        (["--batch-size", "0"], "--batch-size 0 is not a batch size (give N >= 1, or dynamic)"),
        (["--precision", "tf32"], "--precision tf32 is not one of fp32|bf16|fp16"),
        (["--model", "electra"], "--model electra does not match --init"),
        ([], "sequence length 128 (--seq-len, default the run's data.seq_len) is longer than "
             "the BERT model's max_position 64 (pass --seq-len 64 or less)"),
    ],
)  # fmt: skip
def test_bad_savedmodel_options_are_one_line(args, expected, tmp_path):
    line = error_line(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "sm",
                             "--to", "savedmodel", *args))  # fmt: skip
    assert expected in line
    assert not (tmp_path / "sm").exists()


@pytest.mark.parametrize("option", [["--task", "squad"], ["--precision", "bf16"],
                                    ["--batch-size", "2"], ["--seq-len", "32"]])  # fmt: skip
def test_savedmodel_options_are_refused_with_another_format(option, tmp_path):
    line = error_line(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "hf", "--to", "hf",
                             *option))  # fmt: skip
    assert line == f"nvlm: error: {option[0]} applies to --to savedmodel, not --to hf"
    assert not (tmp_path / "hf").exists()


def test_a_length_below_the_masking_budget_exports_an_hf_encoder(tmp_path):
    # A features export reads no masked-LM budget (default 20): --seq-len 16 must not fail on it.
    ok(invoke("convert", FIXTURES / "bert_tiny_hf", tmp_path / "sm", "--to", "savedmodel",
              "--task", "features", "--seq-len", 16))  # fmt: skip
    serve = tf.saved_model.load(str(tmp_path / "sm" / "1")).signatures["serving_default"]
    ids = tf.ones((2, 16), tf.int32)
    out = serve(input_ids=ids, input_mask=ids, segment_ids=tf.zeros_like(ids))
    assert out["sequence_output"].shape == (2, 16, 32) and out["pooled_output"].shape == (2, 32)
