"""Encoder features for texts (`nvlm predict --task features`), for every encoder plugin: the
token vectors of the last layer (or of layer K), or one vector per text pooled from them.

The plugin says what it has: task "features" is the encoder a source holds by default, and its
`encoder_parts` the encoders `--part PART` may choose (ELECTRA: discriminator, generator), built
and loaded as task "features:PART". The model is loaded by `tasks.inference.load_model`, so the run's
precision and XLA setting (or --preset's, --precision, --xla, --set) apply as in the other
predict tasks.

    fx = FeatureExtractor(registry.get("bert"), "runs/bert-p1", FeatureOptions(pooling="mean",
                          normalize=True))
    [row] = fx(["the cat sat on the mat ."])
    row["tokens"], len(row["embedding"])       # ['[CLS]', 'the', ...], hidden
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvlm.errors import UserError

POOLINGS = ("cls", "mean", "pooler")
TASK = "features"
DECIMALS = 6  # JSON lines: float32 carries ~7 significant digits; 6 decimals keep lines short


@dataclass(frozen=True)
class FeatureOptions:
    """What `--task features` prints (None / False: not given).

    Args:
        layer: the layer whose token vectors are read (0 = embeddings, -1 = last).
        pooling: "cls" (the [CLS] vector), "mean" (the mean over the real tokens, [CLS] and
            [SEP] included, as sentence-transformers' mean pooling over the attention mask) or
            "pooler" (BERT's pooled output: tanh(dense([CLS])) of the last layer).
        normalize: L2-normalise the pooled vector (sentence-embedding checkpoints expect it).
        part: the encoder of a plugin that has several (ELECTRA: discriminator | generator).
        pooled: the old spelling of pooling="pooler"; its lines keep the old key "features".
    """

    layer: int | None = None
    pooling: str | None = None
    normalize: bool = False
    part: str | None = None
    pooled: bool = False

    @property
    def pooling_used(self) -> str | None:
        return "pooler" if self.pooled else self.pooling


def feature_parts(plugin) -> tuple[str, ...]:
    """The encoders `--part` may choose for `plugin` (empty: it has one)."""
    return tuple(plugin.encoder_parts)


def check_options(plugin, model: str, options: FeatureOptions) -> str:
    """The task to build ("features" or "features:PART") once the options are checked against
    each other and the plugin, before anything is loaded; UserError in one line otherwise."""
    if options.pooling is not None and options.pooling not in POOLINGS:
        raise UserError(
            f"--pooling {options.pooling!r} is not a pooling (use --pooling {'|'.join(POOLINGS)})"
        )
    if options.pooled and options.pooling not in (None, "pooler"):
        raise UserError(
            f"--pooled is the old spelling of --pooling pooler: give --pooling "
            f"{options.pooling} or --pooled, not both"
        )
    if options.normalize and options.pooling_used is None:
        raise UserError(
            "--normalize needs --pooling cls|mean|pooler (it L2-normalises the pooled vector)"
        )
    if options.pooling_used == "pooler" and options.layer is not None:
        raise UserError(
            f"--layer {options.layer} does not apply to --pooling pooler (the pooler reads the "
            "last layer): use --pooling cls|mean with --layer"
        )
    parts = feature_parts(plugin)
    if options.part is None:
        return TASK
    if not parts:
        raise UserError(
            f"--part does not apply to --model {model}: it has one encoder (drop --part)"
        )
    if options.part not in parts:
        raise UserError(
            f"--part {options.part!r} is not an encoder of --model {model} "
            f"(use --part {'|'.join(parts)})"
        )
    return f"{TASK}:{options.part}"


class FeatureExtractor:
    """One encoder loaded from any `--init` source of `plugin`, encoding batches of texts into
    JSON-ready rows: {"text", "tokens", "features"} (token vectors, one per token) or, with a
    pooling, {"text", "tokens", "embedding"} (one vector); --pooled keeps its old row
    {"text", "tokens", "features": vector}.

    Args:
        plugin: the model's `ModelPlugin`.
        init: the --init source.
        options: what to print (`FeatureOptions`).
        model: the model name the user typed (messages).
        load_options: keyword arguments of `tasks.inference.load_model` (precision, XLA,
            preset, --set: `PredictRequest.load_options()`).
    """

    def __init__(self, plugin, init: str, options: FeatureOptions, *, model: str | None = None,
                 load_options: dict | None = None) -> None:  # fmt: skip
        from nvlm.data.vocab import Vocab
        from nvlm.tasks.inference import load_model_and_absent

        model = model or plugin.name
        task = check_options(plugin, model, options)
        vocab_path, lowercase = plugin.text_settings(init)
        if vocab_path is None:
            raise UserError(f"--init {init} has no vocab.txt next to it (copy the vocab there)")
        self.cfg, self.model, absent = load_model_and_absent(
            plugin, init, task, **(load_options or {})
        )
        self.options = options
        pooling = options.pooling_used
        if pooling == "pooler" and "pooled_output" not in self.model.output:
            raise UserError(
                f"--pooling pooler: --model {model} has no pooler (use --pooling cls|mean)"
            )
        if pooling == "pooler" and any("pooler" in title for title in absent):
            raise UserError(
                f"--pooling pooler: --init {init} has no pooler weights (it would print a "
                "random projection): use --pooling cls|mean"
            )
        # The encoder's own depth (ELECTRA's generator may have fewer layers than the config's).
        layers = len(self.model.output["hidden_states"]) - 1
        if options.layer is not None and not -layers - 1 <= options.layer <= layers:
            raise UserError(
                f"--layer {options.layer} is out of range: the encoder has layers 0..{layers} "
                "(0 = embeddings, -1 = last)"
            )
        self.vocab = Vocab.load(vocab_path)
        self.tokenizer = self.vocab.tokenizer(lowercase)
        self.max_seq_len = min(512, self.cfg.model.max_position)
        self.cls, self.sep = self.vocab.id("[CLS]"), self.vocab.id("[SEP]")
        self._forward = self._compile(bool(self.cfg.train.xla))

    def _compile(self, xla: bool):
        """The forward pass (XLA when the run or --xla asks), reading only the chosen layer
        and the pooler, as float32 (a bf16 model's vectors are printed like an fp32 one's)."""
        import tensorflow as tf

        layer, pooler = self.options.layer, self.options.pooling_used == "pooler"

        def forward(batch):
            out = self.model(batch, training=False)
            seq = out["sequence_output"] if layer is None else out["hidden_states"][layer]
            result = {"sequence": tf.cast(seq, tf.float32)}
            if pooler:
                result["pooled"] = tf.cast(out["pooled_output"], tf.float32)
            return result

        return tf.function(forward, reduce_retracing=True, jit_compile=xla)

    def encode_ids(self, input_ids, input_mask, segment_ids=None) -> dict[str, np.ndarray]:
        """The chosen layer's token vectors ("sequence", [batch, seq, hidden]) and, with
        pooling, the pooled vectors ("embedding", [batch, hidden]) of token id arrays."""
        import tensorflow as tf

        ids = np.asarray(input_ids, np.int32)
        mask = np.asarray(input_mask, np.int32)
        segments = np.zeros_like(ids) if segment_ids is None else np.asarray(segment_ids, np.int32)
        batch = {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
        out = self._forward({k: tf.constant(v) for k, v in batch.items()})
        out = {k: v.numpy() for k, v in out.items()}
        result = {"sequence": out["sequence"]}
        if "pooled" in out or self.options.pooling_used is not None:
            result["embedding"] = pool(out["sequence"], mask, self.options, out.get("pooled"))
        return result

    def __call__(self, texts: list[str]) -> list[dict]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        rows = [[self.cls, *enc.ids[: self.max_seq_len - 2], self.sep] for enc in encodings]
        length = max(len(r) for r in rows)
        ids = np.zeros((len(rows), length), np.int32)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        out = self.encode_ids(ids, mask)
        results = []
        for i, (text, r) in enumerate(zip(texts, rows, strict=True)):
            row = {"text": text, "tokens": [self.vocab.tokens[t] for t in r]}
            if self.options.pooled:  # the old --pooled line: the vector under "features"
                row["features"] = _rounded(out["embedding"][i])
            elif "embedding" in out:
                row["embedding"] = _rounded(out["embedding"][i])
            else:
                row["features"] = _rounded(out["sequence"][i, : len(r)])
            results.append(row)
        return results


def pool(sequence: np.ndarray, mask: np.ndarray, options: FeatureOptions, pooled=None):
    """[batch, hidden] vectors of `sequence` [batch, seq, hidden] by `options`' pooling (the
    pooler's output is `pooled`), L2-normalised when `options.normalize`."""
    pooling = options.pooling_used
    if pooling == "pooler":
        vectors = np.asarray(pooled, np.float32)
    elif pooling == "cls":
        vectors = sequence[:, 0]
    else:  # mean over the real tokens: padding must not pull the mean towards its vectors
        weights = np.asarray(mask, np.float32)[:, :, None]
        vectors = (sequence * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
    if options.normalize:  # as torch.nn.functional.normalize: eps keeps a zero vector zero
        norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return vectors.astype(np.float32)


def _rounded(values: np.ndarray) -> list:
    return np.round(np.asarray(values, np.float64), DECIMALS).tolist()
