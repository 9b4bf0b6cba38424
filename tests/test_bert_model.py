"""BERT config, backbone, pretrainer, losses, span head and FLOPs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nvlm.errors import UserError
from nvlm.models.bert import (
    SIZES,
    BertBackbone,
    BertConfig,
    BertPretrainer,
    BertQuestionAnswerer,
    flops_per_token,
    pad_vocab,
    pretraining_losses,
)

VOCAB = 104


def tiny(**overrides) -> BertConfig:
    return BertConfig.from_size("tiny", vocab_size=VOCAB, **overrides)


def make_batch(batch: int = 3, seq: int = 16, predictions: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lengths = np.array([seq, seq // 2, 5, seq - 3][:batch])
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, VOCAB, (batch, seq)).astype(np.int32) * mask
    positions = np.zeros((batch, predictions), np.int32)
    for row, length in enumerate(lengths):
        count = min(predictions, length - 2)
        positions[row, :count] = np.sort(rng.choice(np.arange(1, length - 1), count, False))
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": (np.arange(seq)[None, :] >= lengths[:, None] // 2).astype(np.int32) * mask,
        "masked_lm_positions": positions,
        "masked_lm_ids": np.where(positions > 0, rng.integers(5, VOCAB, positions.shape), 0),
        "next_sentence_labels": rng.integers(0, 2, (batch,)).astype(np.int32),
    }


def backbone_inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}


def test_sizes_are_the_published_architectures():
    assert SIZES["tiny"] == dict(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=256)
    assert SIZES["small"] == dict(
        num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048
    )
    assert SIZES["base"] == dict(
        num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072
    )
    assert SIZES["large"] == dict(
        num_layers=24, hidden_size=1024, num_heads=16, intermediate_size=4096
    )
    cfg = BertConfig.from_size("large", vocab_size=pad_vocab(30522), dropout=0.0)
    assert (cfg.vocab_size, cfg.num_layers, cfg.dropout, cfg.max_position) == (30528, 24, 0.0, 512)
    assert BertConfig.size_of(**SIZES["small"]) == "small"
    assert BertConfig.size_of(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64) == (
        "custom"
    )


def test_pad_vocab_rounds_up_to_the_multiple():
    assert [pad_vocab(n) for n in (1, 8, 9, 30522)] == [8, 8, 16, 30528]
    assert pad_vocab(100, multiple=64) == 128


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(size="huge"), "unknown BERT size 'huge'"),
        (dict(num_heads=3), "not divisible"),
        (dict(dropout=1.5), "model.dropout must be in [0, 1)"),
    ],
)
def test_config_rejects_bad_values_with_a_user_error(overrides, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(")", r"\)")):
        BertConfig(**{**tiny().__dict__, **overrides})


def test_backbone_outputs_and_hidden_states():
    cfg = tiny()
    backbone = BertBackbone(**cfg.to_backbone_kwargs())
    batch = make_batch()
    out = backbone(backbone_inputs(batch))
    assert tuple(out["sequence_output"].shape) == (3, 16, 64)
    assert tuple(out["pooled_output"].shape) == (3, 64)
    assert len(out["hidden_states"]) == cfg.num_layers + 1
    np.testing.assert_array_equal(
        np.asarray(out["hidden_states"][-1]), np.asarray(out["sequence_output"])
    )
    assert BertBackbone.from_config(backbone.get_config()).get_config() == backbone.get_config()


def test_backbone_padding_does_not_change_real_tokens():
    backbone = BertBackbone(**tiny().to_backbone_kwargs())
    batch = make_batch()
    changed = dict(batch, input_ids=batch["input_ids"].copy())
    changed["input_ids"][1, 8:] = 77  # row 1 is padding from position 8
    a = backbone(backbone_inputs(batch))
    b = backbone(backbone_inputs(changed))
    np.testing.assert_allclose(
        np.asarray(a["sequence_output"])[1, :8], np.asarray(b["sequence_output"])[1, :8], atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(a["pooled_output"]), np.asarray(b["pooled_output"]), atol=1e-5
    )


def test_pretrainer_ties_the_decoder_and_returns_float32_logits():
    backbone = BertBackbone(**tiny().to_backbone_kwargs(), dtype="mixed_bfloat16")
    pretrainer = BertPretrainer(backbone)
    batch = make_batch()
    out = pretrainer(batch)  # a whole batch: the labels are not inputs
    assert tuple(out["mlm_logits"].shape) == (3, 4, VOCAB)
    assert tuple(out["nsp_logits"].shape) == (3, 2)
    assert out["mlm_logits"].dtype == tf.float32 and out["nsp_logits"].dtype == tf.float32
    # Tied: the word embedding is the head's decoder, counted once among the weights.
    assert pretrainer.mlm_head.token_embedding.embeddings is backbone.token_embedding.embeddings
    assert len({id(w) for w in pretrainer.weights}) == len(pretrainer.weights)
    names = {w.path for w in pretrainer.weights}
    assert not any("decoder" in name for name in names)
    clone = BertPretrainer.from_config(pretrainer.get_config())
    assert len(clone.weights) == len(pretrainer.weights)


def test_pretrainer_last_layer_at_the_heads_equals_the_full_backbone():
    # The pretrainer runs its last block only at [CLS] and the masked positions; its outputs
    # and gradients must be those of the heads on the full backbone's output.
    keras.utils.set_random_seed(7)
    pretrainer = BertPretrainer(
        BertBackbone(**tiny(dropout=0.0, attention_dropout=0.0).to_backbone_kwargs())
    )
    batch = make_batch()
    weights = pretrainer.trainable_variables
    results = []
    for subset in (True, False):
        with tf.GradientTape() as tape:
            if subset:
                out = pretrainer(batch, training=True)
            else:
                encoded = pretrainer.backbone(backbone_inputs(batch), training=True)
                out = {
                    "mlm_logits": pretrainer.mlm_head(
                        encoded["sequence_output"], batch["masked_lm_positions"]
                    ),
                    "nsp_logits": pretrainer.nsp_head(encoded["pooled_output"]),
                }
            loss = pretraining_losses(out, batch)["loss"]
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, weights)]
        results.append([out["mlm_logits"], out["nsp_logits"], loss, *grads])
    assert all(g is not None for g in results[0][3:])
    for ours, full in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(full), atol=1e-5)


def test_pretraining_losses_match_a_numpy_computation():
    rng = np.random.default_rng(3)
    batch = make_batch()
    outputs = {
        "mlm_logits": rng.normal(size=(3, 4, VOCAB)).astype(np.float32),
        "nsp_logits": rng.normal(size=(3, 2)).astype(np.float32),
    }
    got = {k: float(v) for k, v in pretraining_losses(outputs, batch).items()}

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    weights = (batch["masked_lm_positions"] != 0).astype(np.float64)
    mlm_lp = np.take_along_axis(
        log_softmax(outputs["mlm_logits"].astype(np.float64)),
        batch["masked_lm_ids"][..., None],
        -1,
    )[..., 0]
    mlm_loss = -(mlm_lp * weights).sum() / weights.sum()
    mlm_acc = ((outputs["mlm_logits"].argmax(-1) == batch["masked_lm_ids"]) * weights).sum() / (
        weights.sum()
    )
    labels = batch["next_sentence_labels"]
    nsp_lp = log_softmax(outputs["nsp_logits"].astype(np.float64))[np.arange(3), labels]
    assert got["mlm_count"] == weights.sum()
    assert got["mlm_loss"] == pytest.approx(mlm_loss, rel=1e-5)
    assert got["mlm_accuracy"] == pytest.approx(mlm_acc, abs=1e-6)
    assert got["nsp_loss"] == pytest.approx(-nsp_lp.mean(), rel=1e-5)
    assert got["nsp_accuracy"] == pytest.approx(
        (outputs["nsp_logits"].argmax(-1) == labels).mean(), abs=1e-6
    )
    assert got["loss"] == pytest.approx(got["mlm_loss"] + got["nsp_loss"], rel=1e-6)


def test_pretraining_losses_edge_cases():
    outputs = {
        "mlm_logits": tf.zeros((1, 2, 4), tf.bfloat16),
        "nsp_logits": tf.zeros((1, 2), tf.bfloat16),
    }
    # No real prediction: loss 0, not NaN; float32 even for bfloat16 logits.
    none = {
        "masked_lm_ids": np.zeros((1, 2)),
        "masked_lm_positions": np.zeros((1, 2)),
        "next_sentence_labels": np.array([[1]]),
    }
    result = pretraining_losses(outputs, none)
    assert result["mlm_loss"].dtype == tf.float32
    assert float(result["mlm_loss"]) == 0.0
    # Explicit weights take precedence over the positions.
    weighted = dict(none, masked_lm_weights=np.array([[1.0, 0.0]]))
    assert float(pretraining_losses(outputs, weighted)["mlm_loss"]) == pytest.approx(np.log(4))


def test_pretraining_step_under_xla_lowers_the_loss():
    keras.utils.set_random_seed(0)
    pretrainer = BertPretrainer(
        # Two layers: the first unpads outside XLA, which must fall back to static shapes here.
        BertBackbone(**tiny(dropout=0.0, attention_dropout=0.0, num_layers=2).to_backbone_kwargs())
    )
    optimizer = keras.optimizers.Adam(1e-3)
    batch = {k: tf.constant(v) for k, v in make_batch().items()}
    variables = pretrainer.trainable_variables

    @tf.function(jit_compile=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = pretraining_losses(pretrainer(batch, training=True), batch)["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    losses = [float(step(batch)) for _ in range(15)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("kind", ["bert", "electra-projected"])
def test_question_answerer_unpads_and_keeps_the_checkpoint_variable_order(kind):
    from nvlm.models.electra.electra_backbone import ElectraBackbone

    keras.utils.set_random_seed(4)
    if kind == "bert":
        backbone = BertBackbone(**tiny().to_backbone_kwargs())
    else:  # ELECTRA's simple QA head: embeddings narrower than the blocks, then a projection
        backbone = ElectraBackbone(VOCAB, hidden_size=32, num_layers=2, num_heads=2,
                                   intermediate_size=64, embedding_size=16)  # fmt: skip
    qa = BertQuestionAnswerer(backbone)
    # Run checkpoints index `model.variables`: the backbone's (pooler included), then the head's.
    expected = [v.path for v in backbone.variables] + [v.path for v in qa.span_head.variables]
    assert [v.path for v in qa.variables] == expected
    batch = make_batch()
    out = qa(batch, training=False)
    padded = qa.span_head(backbone(backbone_inputs(batch), training=False)["sequence_output"])
    real = batch["input_mask"] > 0
    np.testing.assert_allclose(
        np.asarray(out["start_logits"])[real], np.asarray(padded)[..., 0][real], atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(out["end_logits"])[real], np.asarray(padded)[..., 1][real], atol=1e-5
    )


def test_question_answerer_gives_start_and_end_logits_per_token():
    qa = BertQuestionAnswerer(BertBackbone(**tiny().to_backbone_kwargs()))
    out = qa(backbone_inputs(make_batch()))
    assert tuple(out["start_logits"].shape) == (3, 16)
    assert tuple(out["end_logits"].shape) == (3, 16)
    assert out["start_logits"].dtype == tf.float32
    assert tuple(qa.span_head.kernel.shape) == (64, 2)


def test_flops_formula_counts_the_model_matmul_weights():
    cfg = tiny()
    backbone = BertBackbone(**cfg.to_backbone_kwargs())
    # Matmul weights of the encoder, counted from the built model.
    n_layers = sum(
        int(np.prod(w.shape))
        for w in backbone.weights
        if "layer_" in w.path and w.path.endswith("kernel")
    )
    seq, h, layers = 128, cfg.hidden_size, cfg.num_layers
    assert flops_per_token(cfg, seq, masked_fraction=0.0) == pytest.approx(
        6 * n_layers + 12 * layers * seq * h + 6 * h * h / seq
    )
    # Forward only is a third of a training step.
    assert flops_per_token(cfg, seq, training=False) == pytest.approx(flops_per_token(cfg, seq) / 3)


def test_flops_of_base_are_close_to_six_times_the_parameters():
    cfg = BertConfig.from_size("base", vocab_size=30528)
    params = cfg.num_layers * (4 * 768**2 + 2 * 768 * 3072)  # 84.9M matmul weights
    ratio = flops_per_token(cfg, 128, masked_fraction=0.0) / (6 * params)
    # Attention at seq 128 adds 2*T*H/(4H^2 + 2HI) = 2.8% (Kaplan et al. 2020).
    assert 1.02 < ratio < 1.04
    # At seq 512 the attention share grows to ~11%.
    assert 1.10 < flops_per_token(cfg, 512, masked_fraction=0.0) / (6 * params) < 1.12
    # The masked-LM head at 20 of 128 tokens adds ~4.5%.
    assert 1.04 < flops_per_token(cfg, 128) / flops_per_token(cfg, 128, masked_fraction=0.0) < 1.06
