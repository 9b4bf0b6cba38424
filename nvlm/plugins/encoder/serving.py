"""The SavedModel signature of BERT and ELECTRA (`nvlm convert --to savedmodel`,
docs/serving.md): the three int32 backbone inputs `[batch, seq]` -> the task's outputs.

squad: what the model's head returns: `start_logits`/`end_logits` (BERT; ELECTRA's simple head)
or the joint head's beam (`start_top_log_probs`, `start_top_index`, `end_top_log_probs`,
`end_top_index`, `answerable_logit`: what `JointSquad`'s decoder reads). features:
`sequence_output`, and BERT's `pooled_output` (ELECTRA has no pooler: its [CLS] vector is
`sequence_output[:, 0]`, not a `pooled_output` a client would take for BERT's tanh pooler).
The per-layer `hidden_states` are left out (num_layers + 1 copies of the sequence output).
classify: `logits` `[batch, num_labels]`, and for a classifier (not a regression model, one
output) `probabilities`, their softmax (what `nvlm predict --task classify` prints).
"""

from __future__ import annotations

from pathlib import Path

from nvlm.models.encoder.backbone import BACKBONE_INPUTS

LEFT_OUT = ("hidden_states",)


def encoder_signature(model, *, batch_size: int | None, seq_len: int, probabilities=False):
    """(input specs, function) of the model's outputs; `probabilities`: also the softmax of
    `logits` (a classifier's)."""
    import tensorflow as tf

    specs = {
        name: tf.TensorSpec([batch_size, seq_len], tf.int32, name=name) for name in BACKBONE_INPUTS
    }

    def fn(inputs):
        out = model(inputs, training=False)
        out = {k: v for k, v in out.items() if k not in LEFT_OUT}
        if probabilities:  # in float32 whatever the policy: bf16 sums to 1 only roughly
            out["probabilities"] = tf.nn.softmax(tf.cast(out["logits"], tf.float32), axis=-1)
        return out

    return specs, fn


def write_encoder_assets(plugin, cfg, src: str, directory: Path, tokenizer_class: str) -> list[str]:
    """vocab.txt and the Hugging Face tokenizer files of `src`'s vocab and casing (the ones an
    HF export has: nvlm.convert.hf.write_tokenizer_files), model_max_length = the export's
    sequence length."""
    from nvlm.convert.hf import write_tokenizer_files

    vocab, lowercase = plugin.text_settings(src)
    before = set(directory.iterdir())
    write_tokenizer_files(
        directory, Path(vocab) if vocab else None, lowercase,
        tokenizer_class=tokenizer_class, max_length=cfg.data.seq_len,
    )  # fmt: skip
    return sorted(p.name for p in set(directory.iterdir()) - before)
