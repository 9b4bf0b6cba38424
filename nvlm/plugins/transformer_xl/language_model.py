"""A trained Transformer-XL for inference: next words, generation and scoring of text.

Settings come from the `eval` stage of a preset (the one given, else the one the run was
trained with): X1 evaluates with tgt_len 64, mem_len 640, clamp_len 400 and same_length. A run
without a preset gets those X1 values. Text is split on whitespace and mapped with the run's
vocab.txt (unknown words -> <unk>); a leading <eos> stands for "start of a line", as every
line of the training text follows one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from nvlm.data.lm.vocab import LMVocab
from nvlm.errors import UserError
from nvlm.models.transformer_xl.evaluation import segment_log_probs
from nvlm.plugins.transformer_xl.init import load_into, source_config, source_vocab

# X1's evaluation settings (scripts/run_wt103_base.sh eval), for runs made without a preset.
X1_EVAL = ("data.seq_len=64", "model.mem_len=640", "model.clamp_len=400", "model.same_length=true")


def resolve_inference_config(plugin, init: str, *, preset=None, sets=(), flags=None):
    """The run config of `init` for inference: its architecture, the preset's eval stage."""
    from nvlm.resolve import resolve_training_config

    run_cfg = source_config(init)
    preset = preset or run_cfg.preset
    sets = list(sets) if preset else [*X1_EVAL, *sets]
    cfg, _ = resolve_training_config(
        plugin, stage=plugin.eval_stage, preset=preset, data=None, init=init, config_file=None,
        sets=sets, flags=dict(flags or {}),
    )  # fmt: skip
    return cfg


class LanguageModel:
    """`cfg`, the built `model` with its weights, and the `vocab` it was trained with."""

    def __init__(self, cfg, model, vocab: LMVocab) -> None:
        self.cfg = cfg
        self.model = model
        self.vocab = vocab
        self.tgt_len = cfg.data.seq_len
        self.mem_len = cfg.model.mem_len
        self._forward = tf.function(
            lambda tokens, memory, valid: model(tokens, memory, valid=valid, training=False),
            reduce_retracing=True,
        )
        self._distribution = tf.function(model.log_probs, reduce_retracing=True)

    @classmethod
    def load(cls, plugin, init: str, *, preset=None, sets=(), flags=None) -> LanguageModel:
        import keras

        from nvlm.train.precision import set_precision

        cfg = resolve_inference_config(plugin, init, preset=preset, sets=sets, flags=flags)
        set_precision(cfg.train.precision)
        keras.utils.set_random_seed(cfg.train.seed)
        model = plugin.build(cfg, "lm")
        load_into(model, init)
        vocab = LMVocab.load(source_vocab(init))
        if len(vocab) != cfg.model.vocab_size:
            raise UserError(
                f"{source_vocab(init)} has {len(vocab)} tokens but the checkpoint has "
                f"vocab_size {cfg.model.vocab_size} (the run directory was altered)"
            )
        return cls(cfg, model, vocab)

    # -- helpers -------------------------------------------------------------------------
    def words(self, text: str) -> tuple[list[int], list[str]]:
        """Ids of the words of `text` (a line break is <eos>, as in the training text) and the
        words that are not in the vocabulary."""
        lines = text.split("\n")
        ids = [i for line in lines[:-1] for i in self.vocab.encode_line(line)]
        ids += self.vocab.encode_words(lines[-1].split())
        unknown = [w for w in text.split() if w not in self.vocab.index]
        return ids, unknown

    def _read(self, ids: list[int], memory, valid: int):
        """Feed `ids` (one row) through the model with memory: (last hidden, memory, valid)."""
        hidden = None
        for start in range(0, len(ids), self.tgt_len):
            chunk = tf.constant([ids[start : start + self.tgt_len]], tf.int32)
            hidden, memory = self._forward(chunk, memory, tf.constant(valid, tf.int32))
            valid = min(valid + chunk.shape[1], self.mem_len)
        return hidden[0, -1], memory, valid

    def _log_probs(self, hidden) -> np.ndarray:
        return self._distribution(hidden[None])[0].numpy().astype(np.float64)

    # -- tasks ---------------------------------------------------------------------------
    def next_words(self, text: str, n: int) -> dict[str, Any]:
        """The n most probable next words after `text`, with probabilities."""
        ids, unknown = self.words(text)
        memory = self.model.empty_memory(1, self.mem_len)
        hidden, _, _ = self._read([self.vocab.eos_id, *ids], memory, 0)
        logp = self._log_probs(hidden)
        best = np.argsort(-logp, kind="stable")[:n]
        return {
            "text": text,
            "context_tokens": len(ids) + 1,
            "unknown_words": unknown,
            "next": [
                {"word": self.vocab.tokens[i], "probability": round(float(np.exp(logp[i])), 6)}
                for i in best
            ],
        }

    def generate(
        self, text: str, k: int, *, temperature: float | None = None, top_k: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Continue `text` by k words: greedy, or sampled (temperature, top-k) with `seed`.
        The memory carries the context: each new word is one more segment of length 1."""
        if temperature is not None and temperature <= 0:
            raise UserError(f"--temperature {temperature} must be > 0")
        sampling = temperature is not None or (top_k or 1) > 1
        rng = np.random.default_rng(seed)
        ids, unknown = self.words(text)
        memory = self.model.empty_memory(1, self.mem_len)
        hidden, memory, valid = self._read([self.vocab.eos_id, *ids], memory, 0)
        out: list[int] = []
        for _ in range(k):
            logp = self._log_probs(hidden)
            if sampling:
                logits = logp / (temperature or 1.0)
                if top_k:
                    cut = np.partition(logits, -top_k)[-top_k] if top_k < len(logits) else -np.inf
                    logits = np.where(logits >= cut, logits, -np.inf)
                p = np.exp(logits - logits.max())
                token = int(rng.choice(len(p), p=p / p.sum()))
            else:
                token = int(np.argmax(logp))
            out.append(token)
            hidden, memory, valid = self._read([token], memory, valid)
        mode = "greedy" if not sampling else (
            f"sampling (temperature {temperature or 1.0:g}"
            + (f", top-k {top_k}" if top_k else "") + f", seed {seed})"
        )  # fmt: skip
        return {
            "text": text,
            "continuation": self.vocab.decode(out).rstrip(" "),
            "words": k,
            "decoding": mode,
            "unknown_words": unknown,
        }

    def score(self, items: list[dict]) -> list[dict]:
        """Log-likelihood (nats) and perplexity of each {"line", "text"[, "id"]}: the line's
        words and its closing <eos>, after a leading <eos>."""
        eos = self.vocab.eos_id
        seqs = [[eos, *self.words(item["text"])[0], eos] for item in items]
        length = max(len(s) for s in seqs) - 1
        inputs = np.zeros((len(seqs), length), np.int32)
        targets = np.zeros((len(seqs), length), np.int32)
        for r, s in enumerate(seqs):
            inputs[r, : len(s) - 1], targets[r, : len(s) - 1] = s[:-1], s[1:]
        logp, _ = segment_log_probs(
            self.model, inputs, targets, tgt_len=self.tgt_len, mem_len=self.mem_len,
            xla=self.cfg.train.xla,
        )  # fmt: skip
        out = []
        for r, (item, s) in enumerate(zip(items, seqs, strict=True)):
            n = len(s) - 1
            ll = float(logp[r, :n].sum())
            record = {"line": item["line"]}
            if "id" in item:
                record["id"] = item["id"]
            record.update(
                tokens=n,
                log_likelihood=round(ll, 6),
                perplexity=round(math.exp(min(-ll / n, 700.0)), 6),
                unk=int(np.count_nonzero(np.array(s[1:-1]) == self.vocab.unk_id)),
            )
            out.append(record)
        return out
