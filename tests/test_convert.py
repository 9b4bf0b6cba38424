"""Checkpoint import/export against Hugging Face's own outputs (fixtures made by
tests/fixtures/make_bert_fixtures.py; torch is not needed here)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file

from nvlm.convert import (
    convert_to_hf,
    detect_source,
    export_hf,
    load_checkpoint,
    model_for,
    read_checkpoint,
)
from nvlm.errors import UserError
from nvlm.models.bert import BertBackbone, BertConfig, BertPretrainer, BertQuestionAnswerer

FIXTURES = Path(__file__).parent / "fixtures"
HF_DIR = FIXTURES / "bert_tiny_hf"
GOOGLE_DIR = FIXTURES / "bert_tiny_google"
EXPECTED = np.load(FIXTURES / "bert_tiny_expected.npz")
INPUTS = {k: EXPECTED[k] for k in ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")}
TOLERANCE = 1e-4  # absolute, float32 (measured: ~2e-6)


def assert_parity(model, backbone_only: bool = False) -> None:
    backbone = getattr(model, "backbone", model)
    out = backbone(INPUTS)
    for name in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(np.asarray(out[name]), EXPECTED[name], atol=TOLERANCE, rtol=0)
    hidden = np.stack([np.asarray(h) for h in out["hidden_states"]])
    np.testing.assert_allclose(hidden, EXPECTED["hidden_states"], atol=TOLERANCE, rtol=0)
    if not backbone_only:
        heads = model(INPUTS)
        for name in ("mlm_logits", "nsp_logits"):
            np.testing.assert_allclose(
                np.asarray(heads[name]), EXPECTED[name], atol=TOLERANCE, rtol=0
            )


def copy_hf(tmp_path: Path, edit=None, config_edit=None) -> Path:
    """A copy of the HF fixture, with its weights (name -> array dict) and config edited."""
    dst = tmp_path / "hf"
    shutil.copytree(HF_DIR, dst)
    if edit is not None:
        weights = edit(load_file(HF_DIR / "model.safetensors"))
        save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    if config_edit is not None:
        config = json.loads((dst / "config.json").read_text())
        config_edit(config)
        (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_detect_source_kinds(tmp_path):
    assert detect_source(HF_DIR) == "hf"
    assert detect_source(GOOGLE_DIR) == "google"
    assert detect_source(GOOGLE_DIR / "bert_model.ckpt") == "google"
    # An object-based checkpoint (what the training loop writes) and a run directory are nvlm.
    prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "ckpt" / "ckpt-1"))
    assert detect_source(prefix) == "nvlm"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("model: {}\n")
    assert detect_source(tmp_path / "run") == "nvlm"
    with pytest.raises(UserError, match="does not exist"):
        detect_source(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot tell what kind of checkpoint"):
        detect_source(tmp_path / "empty")


def test_google_training_directory_uses_its_latest_checkpoint(tmp_path):
    # run_pretraining.py leaves model.ckpt-N files and a `checkpoint` state file.
    for step in (100, 200):
        for f in GOOGLE_DIR.glob("bert_model.ckpt.*"):
            suffix = f.name.removeprefix("bert_model.ckpt")
            shutil.copyfile(f, tmp_path / f"model.ckpt-{step}{suffix}")
    shutil.copyfile(GOOGLE_DIR / "bert_config.json", tmp_path / "bert_config.json")
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "model.ckpt-200"\n'
        'all_model_checkpoint_paths: "model.ckpt-100"\n'
        'all_model_checkpoint_paths: "model.ckpt-200"\n'
    )
    assert detect_source(tmp_path) == "google"
    model = model_for(read_checkpoint(tmp_path))
    assert load_checkpoint(model, tmp_path) == []
    assert_parity(model)


def test_hf_directory_parity():
    ckpt = read_checkpoint(HF_DIR)
    assert ckpt.kind == "hf" and ckpt.vocab == HF_DIR / "vocab.txt"
    assert ckpt.config.num_heads == 4 and ckpt.config.size == "custom"
    model = model_for(ckpt)
    assert isinstance(model, BertPretrainer)
    assert load_checkpoint(model, ckpt) == []
    assert_parity(model)


@pytest.mark.parametrize("path", [GOOGLE_DIR, GOOGLE_DIR / "bert_model.ckpt"])
def test_google_checkpoint_parity(path):
    ckpt = read_checkpoint(path)
    assert ckpt.kind == "google" and ckpt.vocab == GOOGLE_DIR / "vocab.txt"
    assert not any("adam" in name or "global_step" in name for name in ckpt.weights)
    model = model_for(ckpt)
    assert load_checkpoint(model, ckpt) == []
    assert_parity(model)


def test_hf_tf_h5_parity(tmp_path):
    # tf_model.h5 in the layout of HF's TF models (Keras 2 HDF5 weights): one group per
    # top-level layer, datasets named by variable path, Keras [in, out] kernels.
    weights = load_file(HF_DIR / "model.safetensors")
    dst = tmp_path / "hf_tf"
    dst.mkdir()
    shutil.copyfile(HF_DIR / "config.json", dst / "config.json")
    with h5py.File(dst / "tf_model.h5", "w") as f:
        for name, value in weights.items():
            parts = name.split(".")
            group = {"bert": "bert", "cls": "mlm___cls"}[parts[0]]
            if parts[1] == "seq_relationship":
                group = "nsp___cls"
            path = "/".join(parts[1:]).replace("layer/", "layer_._")
            if path.endswith("LayerNorm/weight"):
                path = path[: -len("weight")] + "gamma"
            elif path.endswith("LayerNorm/bias"):
                path = path[: -len("bias")] + "beta"
            elif path.startswith("embeddings/") and path.endswith("weight"):
                path = path if "word_" in path else path[: -len("weight")] + "embeddings"
            elif path.endswith("weight"):
                path, value = path[: -len("weight")] + "kernel", value.T
            prefix = "bert" if group == "bert" else "cls"
            f[f"{group}/tf_bert_for_pre_training/{prefix}/{path}:0"] = value
    model = model_for(read_checkpoint(dst))
    assert load_checkpoint(model, dst) == []
    assert_parity(model)


def test_hf_model_without_heads_loads_with_a_warning(tmp_path):
    # A bare HF BertModel: no `bert.` prefix, no cls.* heads.
    def strip(weights):
        return {k.removeprefix("bert."): v for k, v in weights.items() if not k.startswith("cls.")}

    src = copy_hf(tmp_path, edit=strip)
    model = BertPretrainer(BertBackbone(**read_checkpoint(src).config.to_backbone_kwargs()))
    warnings = load_checkpoint(model, src)
    assert len(warnings) == 2
    assert "masked-LM head" in warnings[0] and "random initialisation" in warnings[0]
    assert "next-sentence head" in warnings[1]
    assert_parity(model, backbone_only=True)
    # Into a bare backbone: nothing to warn about.
    backbone = BertBackbone(**read_checkpoint(src).config.to_backbone_kwargs())
    assert load_checkpoint(backbone, src) == []


def test_heads_the_model_lacks_are_ignored_with_a_warning():
    backbone = BertBackbone(**read_checkpoint(HF_DIR).config.to_backbone_kwargs())
    warnings = load_checkpoint(backbone, HF_DIR)
    assert any("ignored its masked-LM head" in w for w in warnings)
    assert_parity(backbone, backbone_only=True)


def test_missing_and_unexpected_weights_are_one_user_error(tmp_path):
    def damage(weights):
        del weights["bert.encoder.layer.1.intermediate.dense.weight"]
        del weights["cls.predictions.transform.dense.bias"]  # a head only partly present
        weights["bert.encoder.layer.1.attention.self.rotary.weight"] = np.zeros((2, 2), np.float32)
        return weights

    src = copy_hf(tmp_path, edit=damage)
    model = model_for(read_checkpoint(src))
    with pytest.raises(UserError) as error:
        load_checkpoint(model, src)
    message = str(error.value)
    assert "\n" not in message
    # Named as the checkpoint names them.
    assert "missing (2): bert.encoder.layer.1.intermediate.dense.weight" in message
    assert "cls.predictions.transform.dense.bias" in message
    assert "unexpected (1): bert.encoder.layer.1.attention.self.rotary.weight" in message


def test_google_missing_weight_is_named_as_google_names_it(tmp_path):
    ckpt = read_checkpoint(GOOGLE_DIR)
    del ckpt.weights["cls/seq_relationship/kernel"]
    with pytest.raises(UserError, match="missing \\(1\\): cls/seq_relationship/output_weights"):
        load_checkpoint(model_for(ckpt), ckpt)


def test_another_architecture_is_a_user_error_naming_its_model_type(tmp_path):
    src = copy_hf(tmp_path, config_edit=lambda c: c.update(model_type="roberta"))
    with pytest.raises(UserError, match="'roberta' model, not BERT"):
        read_checkpoint(src)


def test_a_model_of_another_shape_is_a_user_error():
    # Same weight shapes, different head count: only the config can tell.
    cfg = read_checkpoint(HF_DIR).config.replace(num_heads=2)
    model = BertPretrainer(BertBackbone(**cfg.to_backbone_kwargs()))
    with pytest.raises(UserError, match=r"another architecture: num_heads 4 \(model 2\)"):
        load_checkpoint(model, HF_DIR)


def test_pytorch_bin_without_torch_is_a_one_line_user_error(tmp_path, monkeypatch):
    src = copy_hf(tmp_path)
    (src / "model.safetensors").unlink()
    (src / "pytorch_model.bin").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(UserError, match="torch is not installed .*pip install torch"):
        read_checkpoint(src)


def test_export_then_import_is_bit_identical(tmp_path):
    model = model_for(read_checkpoint(HF_DIR))
    load_checkpoint(model, HF_DIR)
    dst = export_hf(model, tmp_path / "exported", vocab=HF_DIR / "vocab.txt")
    assert sorted(p.name for p in dst.iterdir()) == [
        ".nvlm",  # nvlm's marker: a later --overwrite may replace this directory
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",  # the tokenizer files: tests/test_hf_export_files.py
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]  # no temp dir left behind
    # Same names, layouts and values as the checkpoint HF itself wrote.
    ours, theirs = load_file(dst / "model.safetensors"), load_file(HF_DIR / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name])
    config = json.loads((dst / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["num_attention_heads"] == 4

    again = model_for(read_checkpoint(dst))
    assert load_checkpoint(again, dst) == []
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    with pytest.raises(UserError, match="already exists"):
        export_hf(model, dst)
    assert export_hf(model, dst, overwrite=True) == dst


def test_question_answerer_round_trips_through_qa_outputs(tmp_path):
    cfg = BertConfig.from_size("tiny", vocab_size=64)
    qa = BertQuestionAnswerer(BertBackbone(**cfg.to_backbone_kwargs()))
    dst = export_hf(qa, tmp_path / "qa")
    names = load_file(dst / "model.safetensors")
    assert names["qa_outputs.weight"].shape == (2, 64)  # torch Linear [out, in]
    np.testing.assert_array_equal(names["qa_outputs.weight"], qa.span_head.kernel.numpy().T)
    again = model_for(read_checkpoint(dst))
    assert isinstance(again, BertQuestionAnswerer)
    assert load_checkpoint(again, dst) == []
    np.testing.assert_array_equal(again.span_head.kernel.numpy(), qa.span_head.kernel.numpy())


def test_google_checkpoint_converts_to_the_same_hf_weights(tmp_path):
    dst, warnings = convert_to_hf(GOOGLE_DIR, tmp_path / "from_google")
    assert warnings == []
    ours, theirs = load_file(dst / "model.safetensors"), load_file(HF_DIR / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name])
    assert (dst / "vocab.txt").read_text() == (GOOGLE_DIR / "vocab.txt").read_text()
