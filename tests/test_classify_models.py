"""Sequence classification models (BertClassifier, ElectraClassifier) and their Hugging Face
interchange, checked against HF's own logits (fixtures made by
tests/fixtures/make_classify_fixtures.py; torch is not needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from nvlm.convert import export_hf, load_checkpoint, model_for, read_checkpoint, read_hf_labels
from nvlm.convert.electra_hf import export_part, write_hf_dir
from nvlm.errors import UserError
from nvlm.models.bert import BertBackbone, BertClassifier, BertConfig
from nvlm.models.electra import ElectraBackbone, ElectraClassifier, ElectraConfig
from nvlm.plugins.bert import interchange as bert_interchange
from nvlm.plugins.electra import interchange as electra_interchange
from nvlm.plugins.electra.init import init_model_values, load_into

FIXTURES = Path(__file__).parent / "fixtures"
BERT_DIR = FIXTURES / "bert_tiny_classify_hf"
ELECTRA_DIR = FIXTURES / "electra_tiny_classify_hf"
REGRESSION_DIR = FIXTURES / "bert_tiny_regression_hf"
EXPECTED = np.load(FIXTURES / "classify_tiny_expected.npz")
INPUTS = {k: EXPECTED[k] for k in ("input_ids", "input_mask", "segment_ids")}
TOLERANCE = 1e-4  # absolute, float32


def logits(model) -> np.ndarray:
    return np.asarray(model(INPUTS, training=False)["logits"])


def imported_bert(src: Path) -> BertClassifier:
    model = model_for(ckpt := read_checkpoint(src))
    assert load_checkpoint(model, ckpt) == []
    return model


def electra_config(src: Path) -> ElectraConfig:
    values = {k.removeprefix("model."): v for k, v in init_model_values(src).items()}
    return ElectraConfig(**values)


def imported_electra(src: Path) -> tuple[ElectraClassifier, ElectraConfig]:
    cfg = electra_config(src)
    model = ElectraClassifier(ElectraBackbone(**cfg.backbone_kwargs()), cfg.num_labels)
    assert load_into(model, None, src, "classify") == []
    return model, cfg


# --- parity with Hugging Face ------------------------------------------------------------------


def test_bert_classifier_gives_hugging_faces_logits_and_labels():
    model = imported_bert(BERT_DIR)
    assert isinstance(model, BertClassifier)
    np.testing.assert_allclose(logits(model), EXPECTED["bert_logits"], atol=TOLERANCE, rtol=0)
    assert read_checkpoint(BERT_DIR).labels == ("negative", "neutral", "positive")


def test_electra_classifier_gives_hugging_faces_logits_and_labels():
    model, cfg = imported_electra(ELECTRA_DIR)
    np.testing.assert_allclose(logits(model), EXPECTED["electra_logits"], atol=TOLERANCE, rtol=0)
    assert (cfg.num_labels, cfg.labels) == (2, ("different", "paraphrase"))


def test_a_regression_head_gives_one_score_per_input_as_hugging_face():
    model = imported_bert(REGRESSION_DIR)
    out = logits(model)
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out, EXPECTED["regression_logits"], atol=TOLERANCE, rtol=0)
    assert read_hf_labels(REGRESSION_DIR) == ()  # problem_type regression: no class names


# --- a directory without a classification head: the normal fine-tuning start -------------------


def test_a_bert_directory_without_a_head_loads_the_encoder_and_warns_the_head_is_random():
    src = FIXTURES / "bert_tiny_hf"  # a BertForPreTraining
    ckpt = read_checkpoint(src)
    model = BertClassifier(BertBackbone(**ckpt.config.to_backbone_kwargs()), num_labels=3)
    warnings = load_checkpoint(model, ckpt)
    assert (
        f"{src} has no classification head (classifier, output_weights): it keeps its "
        "random initialisation" in warnings
    )
    assert ckpt.labels == ()
    np.testing.assert_array_equal(
        np.asarray(model.backbone.pooler.kernel), ckpt.weights["pooler/dense/kernel"]
    )


def test_an_electra_directory_without_a_head_loads_the_encoder_and_warns_the_head_is_random():
    src = FIXTURES / "electra_tiny_hf" / "discriminator"  # an ElectraForPreTraining
    cfg = electra_config(src)
    model = ElectraClassifier(ElectraBackbone(**cfg.backbone_kwargs()), num_labels=2)
    warnings = load_into(model, None, src, "classify")
    assert f"{src} has no classification head (classifier): it keeps its random initialisation" in (
        warnings
    )
    assert "model.num_labels" not in init_model_values(src)


def test_a_head_with_other_labels_than_the_model_is_refused_naming_the_weight():
    ckpt = read_checkpoint(BERT_DIR)
    model = BertClassifier(BertBackbone(**ckpt.config.to_backbone_kwargs()), num_labels=2)
    with pytest.raises(UserError) as err:
        load_checkpoint(model, ckpt)
    assert str(err.value).startswith(
        f"{BERT_DIR} does not match the model: shape mismatch (2): classifier.weight "
        "checkpoint [32, 3] vs model [32, 2], classifier.bias checkpoint [3] vs model [2]"
    )


# --- export -> import ------------------------------------------------------------------------


def test_bert_export_writes_a_sequence_classifier_that_imports_to_identical_logits(tmp_path):
    model = imported_bert(BERT_DIR)
    labels = read_hf_labels(BERT_DIR)
    out = export_hf(model, tmp_path / "hf", labels=labels)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert config["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert config["problem_type"] == "single_label_classification"
    again = imported_bert(out)
    np.testing.assert_array_equal(logits(again), logits(model))
    assert read_hf_labels(out) == labels


def test_a_regression_export_says_regression(tmp_path):
    out = export_hf(imported_bert(REGRESSION_DIR), tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert (config["problem_type"], config["num_labels"]) == ("regression", 1)
    assert read_hf_labels(out) == ()


def test_electra_export_writes_a_sequence_classifier_that_imports_to_identical_logits(tmp_path):
    model, cfg = imported_electra(ELECTRA_DIR)
    tensors, config, warnings = export_part(model, cfg, "discriminator")
    assert warnings == []
    out = write_hf_dir(tensors, config, tmp_path / "hf")
    written = json.loads((out / "config.json").read_text())
    assert written["architectures"] == ["ElectraForSequenceClassification"]
    assert written["id2label"] == {"0": "different", "1": "paraphrase"}
    assert sorted(tensors)[:2] == ["classifier.dense.bias", "classifier.dense.weight"]
    again, again_cfg = imported_electra(out)
    np.testing.assert_array_equal(logits(again), logits(model))
    assert again_cfg.labels == cfg.labels


@pytest.mark.parametrize(
    "src, interchange, expected",
    [
        (BERT_DIR, bert_interchange, "bert_logits"),
        (ELECTRA_DIR, electra_interchange, "electra_logits"),
    ],
    ids=["bert", "electra"],
)
def test_convert_to_nvlm_and_back_keeps_the_head_and_its_labels(
    tmp_path, src, interchange, expected
):
    from nvlm import config as config_mod

    run, _ = interchange.to_nvlm(src, tmp_path / "run")
    cfg = config_mod.load(run)
    assert (cfg.stage, cfg.model.labels) == ("classify", read_hf_labels(src))
    out, _ = interchange.to_hf(run, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == json.loads((src / "config.json").read_text())["id2label"]
    _, model = interchange.load_run_model(run)
    np.testing.assert_allclose(logits(model), EXPECTED[expected], atol=TOLERANCE, rtol=0)


# --- precision, shapes and config -----------------------------------------------------------------


def tiny_models(num_labels: int) -> list[keras.Model]:
    bert = BertConfig.from_size("tiny", vocab_size=96, num_labels=num_labels)
    electra = ElectraConfig(size="tiny", vocab_size=96, hidden_size=64, num_layers=2,
                            num_heads=2, intermediate_size=256, embedding_size=32)  # fmt: skip
    return [
        BertClassifier(BertBackbone(**bert.to_backbone_kwargs()), num_labels),
        ElectraClassifier(ElectraBackbone(**electra.backbone_kwargs()), num_labels),
    ]


def test_logits_are_float32_under_bf16():
    from nvlm.train.precision import set_precision

    set_precision("bf16")
    for model in tiny_models(3):
        assert model.backbone.compute_dtype == "bfloat16"
        out = model(INPUTS)["logits"]
        assert (keras.backend.standardize_dtype(out.dtype), tuple(out.shape)) == ("float32", (3, 3))


def test_one_label_gives_one_output_column():
    for model in tiny_models(1):
        assert logits(model).shape == (3, 1)


def test_build_makes_the_classifier_of_the_config():
    from nvlm import resolve

    for name, cls in (("bert", BertClassifier), ("electra", ElectraClassifier)):
        cfg = resolve.resolve(
            name,
            "classify",
            flags={"model.size": "tiny", "model.num_labels": 3, "model.labels": ["a", "b", "c"]},
        ).config
        model = __import__(f"nvlm.models.{name}.build", fromlist=["build"]).build(cfg, "classify")
        assert isinstance(model, cls) and model.num_labels == 3
        assert cfg.model.labels == ("a", "b", "c")


def test_label_names_that_do_not_fit_the_head_are_refused():
    with pytest.raises(UserError) as err:
        BertConfig(num_labels=3, labels=("a", "b"))
    assert str(err.value) == (
        "model.labels names 2 labels but model.num_labels is 3 (give one name per output, "
        "or no names)"
    )
    with pytest.raises(UserError) as err:
        ElectraConfig(num_labels=2, labels=("a", "a"))
    assert str(err.value) == "model.labels names 'a' more than once"


def test_an_id2label_whose_keys_are_not_the_outputs_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "a", "2": "b"}}))
    with pytest.raises(UserError) as err:
        read_hf_labels(tmp_path)
    assert str(err.value).startswith(
        f"{tmp_path / 'config.json'}: id2label keys must be the outputs 0..1, got ['0', '2']"
    )
