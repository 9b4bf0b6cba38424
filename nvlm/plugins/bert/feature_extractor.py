"""Encoder features for texts, like BERT's extract_features tool: the sequence output of the
last layer (or of layer K), or the pooled [CLS] output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from nvlm.errors import UserError


class FeatureExtractor:
    """Loads a BERT encoder once from any `--init` source and encodes batches of texts.

    Example:
        fx = FeatureExtractor("runs/bert-p1", layer=None, pooled=False)
        [row] = fx(["the cat sat on the mat ."])
        row["tokens"], np.shape(row["features"])     # ['[CLS]', 'the', ...], (9, hidden)
    """

    def __init__(
        self,
        src: str | Path,
        *,
        layer: int | None = None,
        pooled: bool = False,
        max_seq_len: int = 512,
        lowercase: bool | None = None,
    ) -> None:
        import keras

        from nvlm import resolve as resolve_mod
        from nvlm.data.vocab import Vocab
        from nvlm.plugins.bert.init import init_model_values, load_into, source_text_settings
        from nvlm.train.precision import set_precision

        set_precision("fp32")
        cfg = resolve_mod.resolve("bert", "features", flags=init_model_values(src)).config
        from nvlm.plugins.bert.plugin import BertPlugin

        self.model = BertPlugin().build(cfg, "features")
        load_into(self.model, cfg, src, "features")
        vocab_path, src_lowercase = source_text_settings(src)
        if vocab_path is None:
            raise UserError(f"--init {src} has no vocab.txt next to it (copy the vocab there)")
        self.vocab = Vocab.load(vocab_path)
        self.tokenizer = self.vocab.tokenizer(src_lowercase if lowercase is None else lowercase)
        layers = cfg.model.num_layers
        if layer is not None and not -layers - 1 <= layer <= layers:
            raise UserError(
                f"--layer {layer} is out of range: the model has layers 0..{layers} "
                "(0 = embeddings, -1 = last)"
            )
        self.layer, self.pooled = layer, pooled
        self.max_seq_len = min(max_seq_len, cfg.model.max_position)
        self.cls, self.sep = self.vocab.id("[CLS]"), self.vocab.id("[SEP]")
        self._forward = tf.function(lambda b: self.model(b, training=False), reduce_retracing=True)
        keras.utils.set_random_seed(0)

    def __call__(self, texts: list[str]) -> list[dict]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        rows = []
        for enc in encodings:
            ids = [self.cls, *enc.ids[: self.max_seq_len - 2], self.sep]
            rows.append(ids)
        length = max(len(r) for r in rows)
        ids = np.zeros((len(rows), length), np.int32)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        out = self._forward(
            {
                "input_ids": tf.constant(ids),
                "input_mask": tf.constant(mask),
                "segment_ids": tf.zeros_like(ids),
            }
        )
        if self.pooled:
            values = out["pooled_output"].numpy().astype(np.float32)
        elif self.layer is None:
            values = out["sequence_output"].numpy().astype(np.float32)
        else:
            values = out["hidden_states"][self.layer].numpy().astype(np.float32)
        results = []
        for i, (text, r) in enumerate(zip(texts, rows, strict=True)):
            tokens = [self.vocab.tokens[t] for t in r]
            feats = values[i] if self.pooled else values[i, : len(r)]
            results.append(
                {
                    "text": text,
                    "tokens": tokens,
                    "features": np.round(feats.astype(np.float64), 6).tolist(),
                }
            )
        return results
