"""SQuAD question answering for any encoder plugin with a "squad" task (BERT now, ELECTRA
next): the fine-tuning spec for the shared loop, batched inference with real latency figures,
and the answerer behind `nvlm predict --question/--context` and JSONL pipelines.

The plugin supplies the model (`build(cfg, "squad")` -> outputs `start_logits`, `end_logits`)
and its text settings; everything else here is model-agnostic. A plugin with another head
(ELECTRA's joint beam search) also has `squad_head(cfg)`, returning an object with
`loss(model, batch, training)`, `metric_units` and `decode(dataset, features, outputs, *,
null_threshold, version_2) -> SquadPredictions` (or None for the start/end head here), and may
have `squad_null_threshold(cfg)`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from nvlm.errors import UserError
from nvlm.outputs import cache_home
from nvlm.tasks.squad import decode_predictions, load_or_featurize, parse_squad, read_squad

INPUTS = ("input_ids", "input_mask", "segment_ids")
# Context characters featurized together by `Answerer.answer` (a longer context goes alone):
# its windows, logits and n-best candidates take about 0.15 GB per million characters.
CONTEXT_BUDGET = 1_000_000


def squad_head(plugin, cfg):
    """The plugin's own SQuAD loss/decoder (`plugin.squad_head(cfg)`), or None."""
    return plugin.squad_head(cfg)


def beam_size_flags(plugin, beam_size: int | None) -> dict:
    """`--beam-size N` as a config flag, for the plugins whose config has a beam."""
    if beam_size is None:
        return {}
    if beam_size < 1:
        raise UserError(f"--beam-size {beam_size} must be at least 1")
    import dataclasses

    if "beam_size" not in {f.name for f in dataclasses.fields(plugin.config_cls)}:
        raise UserError(
            f"--beam-size applies to a beam-search answer head; {plugin.name} has none "
            "(drop --beam-size)"
        )
    return {"model.beam_size": beam_size}


def text_settings(plugin, init: str) -> tuple:
    """(Vocab, lowercase) of the checkpoint being fine-tuned or served."""
    from nvlm.data.vocab import Vocab

    vocab_path, lowercase = plugin.text_settings(init)
    if vocab_path is None:
        raise UserError(f"--init {init} has no vocab.txt (put the model's vocab.txt next to it)")
    return Vocab.load(vocab_path), lowercase


def features_for(dataset, vocab, lowercase: bool, cfg, *, training: bool, cache_dir=None):
    """The features of `dataset` under `cfg`'s lengths, through the cache in `cache_dir`."""
    return cached_features(dataset, vocab, lowercase, cfg, training=training, cache_dir=cache_dir)[
        0
    ]


def cached_features(dataset, vocab, lowercase: bool, cfg, *, training: bool, cache_dir=None):
    """`features_for` and whether they came from the cache."""
    feats, hit = load_or_featurize(
        dataset,
        vocab,
        cache_dir,
        lowercase=lowercase,
        seq_len=cfg.data.seq_len,
        doc_stride=cfg.data.doc_stride,
        max_query_len=cfg.data.max_query_len,
        training=training,
    )
    if feats.truncated_queries:
        from nvlm.report import warn

        warn(
            f"{feats.truncated_queries} question(s) longer than {cfg.data.max_query_len} tokens "
            "were truncated (raise data.max_query_len to keep them whole)"
        )
    return feats, hit


# --- fine-tuning ---------------------------------------------------------------------------


def span_loss(model, batch, training):
    out = model({k: batch[k] for k in INPUTS}, training=training)
    start, end = out["start_logits"], out["end_logits"]
    # Padding positions must never win: mask them before the softmax.
    neg = (1.0 - tf.cast(batch["input_mask"], tf.float32)) * -1e4
    start, end = start + neg, end + neg
    s_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=batch["start_positions"], logits=start
    )
    e_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=batch["end_positions"], logits=end
    )
    loss = tf.reduce_mean((s_loss + e_loss) / 2.0)
    s_acc = tf.reduce_mean(
        tf.cast(tf.argmax(start, -1, output_type=tf.int32) == batch["start_positions"], tf.float32)
    )
    e_acc = tf.reduce_mean(
        tf.cast(tf.argmax(end, -1, output_type=tf.int32) == batch["end_positions"], tf.float32)
    )
    return loss, {"start_acc": s_acc, "end_acc": e_acc}


def layer_decay_multipliers(model, num_layers: int, decay: float) -> list[float] | None:
    """Layer-wise learning-rate decay (ELECTRA's recipe): the task head gets lr, block i
    (0-based) lr * decay ** (L - i), the embeddings lr * decay ** (L + 1)."""
    if decay >= 1.0:
        return None
    import re

    mults = []
    for v in model.trainable_variables:
        path = v.path
        m = re.search(r"layer_(\d+)/", path)
        if m:
            depth = int(m.group(1)) + 1
        elif "embeddings" in path:
            depth = 0
        else:
            depth = num_layers + 1  # pooler and task head
        mults.append(decay ** (num_layers + 1 - depth))
    return mults


def train_spec(plugin, cfg, model, train_json: Path, run: Path, init: str, world):
    from nvlm.tasks.squad.held_out import with_held_out_dev

    dataset = read_squad(train_json, cfg.data.squad_version)
    vocab, lowercase = text_settings(plugin, init)
    feats = features_for(
        dataset, vocab, lowercase, cfg, training=True, cache_dir=Path(run) / "cache"
    )
    arrays = {
        **feats.inputs(),
        **{k: v for k, v in feats.targets().items() if k in ("start_positions", "end_positions")},
    }
    head = squad_head(plugin, cfg)
    if head is not None:  # e.g. ELECTRA's answerability loss needs is_impossible
        arrays["is_impossible"] = feats.targets()["is_impossible"]
    spec = spec_from_arrays(plugin, cfg, model, arrays, world)
    # The dev set's EM/F1 every train.eval_every steps or each epoch (--eval-data).
    scorer = lambda path: dev_scorer(plugin, cfg, model, path, init=init)  # noqa: E731
    return with_held_out_dev(spec, cfg, scorer, examples=len(arrays["input_ids"]))


def spec_from_arrays(plugin, cfg, model, arrays: dict, world):
    """The fine-tuning `TrainSpec` of featurized examples (name -> [examples, ...] arrays):
    SQuAD features, or synthetic ones of their shape (`nvlm benchmark train --task squad`)."""
    from nvlm.data.examples import ArrayPart, ExampleSource
    from nvlm.train.trainer import TrainSpec, sequence_flops

    head = squad_head(plugin, cfg)
    arrays = {k: np.asarray(v, dtype=np.int32) for k, v in arrays.items()}
    if head is None:
        arrays.pop("is_impossible", None)
    examples = len(arrays["input_ids"])
    src = ExampleSource(
        [ArrayPart(arrays)],
        seed=cfg.train.seed,
        shuffle_buffer=max(cfg.data.shuffle_buffer, examples),
    )
    steps = cfg.train.steps
    if cfg.train.epochs is not None:
        steps = max(1, math.ceil(cfg.train.epochs * examples / cfg.global_batch))
    seq = cfg.data.seq_len

    def batches(start: int):
        for b in src.micro_batches(start, cfg.train.batch_size, rank=world.rank, world=world.size):
            yield {k: tf.constant(v) for k, v in b.items()}

    return TrainSpec(
        model=model,
        loss_fn=span_loss if head is None else head.loss,
        batches=batches,
        tokens_per_example=seq,
        flops_per_example=sequence_flops(
            lambda n: plugin.flops_per_token(cfg, n, task="squad"),
            arrays["input_mask"].astype(bool).sum(axis=1),
        ),
        metric_units={"start_acc": "1", "end_acc": "1"} if head is None else head.metric_units,
        total_steps=steps,
        lr_multipliers=layer_decay_multipliers(model, cfg.model.num_layers, cfg.train.layer_decay),
    )


# --- inference -------------------------------------------------------------------------------


@dataclass
class InferenceTiming:
    total_s: float  # every batch, including the first (tracing)
    without_startup_s: float  # from the end of the first batch to the end
    sequences: int  # all sequences
    timed_sequences: int  # sequences after the first batch
    batch_latencies_ms: list[float]

    def summary(self) -> dict[str, float]:
        # Percentiles over real per-batch timings, the first (tracing) batch excluded when
        # there are others.
        lat = np.asarray(self.batch_latencies_ms[1:] or self.batch_latencies_ms, np.float64)
        return {
            "total_inference_time_s": round(self.total_s, 4),
            "time_without_startup_s": round(self.without_startup_s, 4),
            "sequences_processed": self.sequences,
            "inference_seq_per_s": round(
                self.timed_sequences / max(self.without_startup_s, 1e-9), 3
            ),
            "latency_avg_ms": round(float(lat.mean()), 3),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 3),
            "latency_p90_ms": round(float(np.percentile(lat, 90)), 3),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 3),
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 3),
        }


def run_model(
    model, feats, batch_size: int, *, xla: bool = False
) -> tuple[np.ndarray, np.ndarray, InferenceTiming]:
    """Start/end logits for every feature, with per-batch latency."""
    outputs, timing = run_model_outputs(model, feats, batch_size, xla=xla)
    return outputs["start_logits"], outputs["end_logits"], timing


def inference_step(model, *, xla: bool = False):
    """The compiled forward pass (XLA when `xla`), its float outputs as float32: a bf16 or
    fp16 model's logits are decoded and written like an fp32 one's."""

    def forward(batch):
        out = model(batch, training=False)
        return {k: tf.cast(v, tf.float32) if v.dtype.is_floating else v for k, v in out.items()}

    return tf.function(forward, reduce_retracing=True, jit_compile=bool(xla))


def run_model_outputs(
    model, feats, batch_size: int, *, xla: bool = False
) -> tuple[dict, InferenceTiming]:
    """Every output of the model for every feature (name -> array, feature-major), with
    per-batch latency (the first batch, which traces and compiles, is start-up)."""
    forward = inference_step(model, xla=xla)
    inputs = feats.inputs()
    n = len(feats)
    collected: dict[str, list] = {}
    lat = []
    t0 = time.perf_counter()
    t_first = None
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        batch = {k: tf.constant(np.asarray(inputs[k][lo:hi], np.int32)) for k in INPUTS}
        tb = time.perf_counter()
        out = forward(batch)
        for name, value in out.items():
            collected.setdefault(name, []).append(value.numpy())
        lat.append((time.perf_counter() - tb) * 1000.0)
        if t_first is None:
            t_first = time.perf_counter()
    t_end = time.perf_counter()
    first = min(batch_size, n)
    if n > first:
        timing = InferenceTiming(t_end - t0, t_end - t_first, n, n - first, lat)
    else:
        timing = InferenceTiming(t_end - t0, t_end - t0, n, n, lat)
    return {name: np.concatenate(parts) for name, parts in collected.items()}, timing


def null_threshold_default(plugin, cfg=None) -> float:
    return float(plugin.null_threshold if cfg is None else plugin.squad_null_threshold(cfg))


def decode(plugin, cfg, dataset, feats, outputs: dict, *, null_threshold: float, version_2: bool):
    """Answers from the model's outputs: the plugin's decoder, or start/end n-best decoding."""
    head = squad_head(plugin, cfg)
    if head is not None:
        return head.decode(
            dataset, feats, outputs, null_threshold=null_threshold, version_2=version_2
        )
    return decode_predictions(
        dataset,
        feats,
        outputs["start_logits"],
        outputs["end_logits"],
        null_threshold=null_threshold,
        version_2=version_2,
        **decoding_options(cfg),
    )


def decoding_options(cfg) -> dict:
    """n_best and max_answer_len of the start/end decoder: the run's `model.n_best` and
    `model.max_answer_len` (BERT, ELECTRA), the reference recipe's 20 and 30 for a model
    config without them."""
    from nvlm.tasks.squad import MAX_ANSWER_LEN, N_BEST

    return {
        "n_best": getattr(cfg.model, "n_best", N_BEST),
        "max_answer_len": getattr(cfg.model, "max_answer_len", MAX_ANSWER_LEN),
    }


def evaluate(
    plugin, cfg, model, dev_json: Path, *, init: str, out_dir: Path, null_threshold: float | None
) -> dict:
    from nvlm.tasks.squad.metrics import evaluate as score

    dataset = read_squad(dev_json, cfg.data.squad_version, require_answers=False)
    vocab, lowercase = text_settings(plugin, init)
    # Dev sets are evaluated again and again (each checkpoint, each threshold): their features
    # are cached per user, keyed by the file, vocab and lengths (never inside --init: an input).
    feats, cached = cached_features(
        dataset, vocab, lowercase, cfg, training=False, cache_dir=cache_home() / "squad"
    )
    outputs, timing = run_model_outputs(model, feats, cfg.data.eval_batch_size, xla=cfg.train.xla)
    threshold = null_threshold_default(plugin, cfg) if null_threshold is None else null_threshold
    preds = decode(
        plugin, cfg, dataset, feats, outputs, null_threshold=threshold, version_2=dataset.is_v2
    )
    files = preds.write(out_dir)
    scores = score(dataset.gold_answers(), preds.predictions, dataset.version, preds.null_odds)
    result = {
        "task": "squad",
        "version": dataset.version,
        **timing.summary(),
        **scores,
        "null_threshold": threshold if dataset.is_v2 else None,
        "features_from_cache": cached,
        "files": {k: str(v) for k, v in files.items()},
    }
    return result


def dev_scorer(plugin, cfg, model, dev_json: Path, *, init: str):
    """`() -> {figure: value}`: the official scores `evaluate` gives `model` on `dev_json`
    (no files written), for evaluation while fine-tuning. The file is read and featurized (or
    its features read from the cache `evaluate` uses) once, at the first call: only the rank
    that evaluates pays for it."""
    from nvlm.tasks.squad.held_out import EVAL_UNITS
    from nvlm.tasks.squad.metrics import evaluate as official

    loaded = []

    def score() -> dict[str, float]:
        if not loaded:
            dataset = read_squad(dev_json, cfg.data.squad_version, require_answers=False)
            vocab, lowercase = text_settings(plugin, init)
            feats, _ = cached_features(dataset, vocab, lowercase, cfg, training=False,
                                       cache_dir=cache_home() / "squad")  # fmt: skip
            loaded.append((dataset, feats))
        dataset, feats = loaded[0]
        outputs, _ = run_model_outputs(model, feats, cfg.data.eval_batch_size, xla=cfg.train.xla)
        preds = decode(plugin, cfg, dataset, feats, outputs,
                       null_threshold=null_threshold_default(plugin, cfg),
                       version_2=dataset.is_v2)  # fmt: skip
        scores = official(dataset.gold_answers(), preds.predictions, dataset.version,
                          preds.null_odds)  # fmt: skip
        return {k: float(v) for k, v in scores.items() if k in EVAL_UNITS}

    return score


class Answerer:
    """Loads a fine-tuned QA model once; answers (question, context) pairs in batches."""

    def __init__(
        self,
        plugin,
        cfg,
        model,
        init: str,
        *,
        null_threshold: float | None = None,
        top_k: int = 1,
        window_batch: int | None = None,
    ) -> None:
        self.plugin, self.cfg, self.model = plugin, cfg, model
        self.vocab, self.lowercase = text_settings(plugin, init)
        self.version = cfg.data.squad_version
        self.null_threshold = (
            null_threshold_default(plugin, cfg) if null_threshold is None else null_threshold
        )
        self.top_k = top_k
        self.window_batch = max(window_batch or 0, cfg.data.eval_batch_size)
        self._forward = inference_step(model, xla=cfg.train.xla)

    def _outputs(self, feats) -> dict[str, np.ndarray]:
        """The model's outputs for every window, `window_batch` windows per forward pass: a long
        context has thousands of windows, and one pass over all of them would hold every
        layer's activations (and attention scores) of every window at once."""
        inputs = feats.inputs()
        parts: dict[str, list] = {}
        for lo in range(0, len(feats), self.window_batch):
            batch = {
                k: tf.constant(np.asarray(inputs[k][lo : lo + self.window_batch], np.int32))
                for k in INPUTS
            }
            for name, value in self._forward(batch).items():
                parts.setdefault(name, []).append(value.numpy())
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}

    def answer(self, items: list[dict]) -> list[dict]:
        """items: {"id", "question", "context"} -> one answer dict per item, in order.

        Items are answered in groups of at most `CONTEXT_BUDGET` context characters (a longer
        context alone), so that a batch of long contexts never has all its windows, logits and
        candidates in memory at once."""
        answers: list[dict] = []
        group: list[dict] = []
        size = 0
        for item in items:
            if group and size + len(item["context"]) > CONTEXT_BUDGET:
                answers += self._answer_group(group)
                group, size = [], 0
            group.append(item)
            size += len(item["context"])
        if group:
            answers += self._answer_group(group)
        return answers

    def _answer_group(self, items: list[dict]) -> list[dict]:
        # Internal question ids: the callers' ids may repeat or be of any JSON type, and
        # parse_squad (rightly) refuses a repeated id in a file.
        qas = [
            {"id": f"q{i}", "question": it["question"], "answers": []} for i, it in enumerate(items)
        ]
        data = {
            "version": self.version,
            "data": [
                {
                    "title": "predict",
                    "paragraphs": [
                        {"context": it["context"], "qas": [qa]}
                        for it, qa in zip(items, qas, strict=True)
                    ],
                }
            ],
        }
        dataset = parse_squad(
            data, self.version, source="<predict>", sha256="", require_answers=False
        )
        try:
            feats = features_for(dataset, self.vocab, self.lowercase, self.cfg, training=False)
        except UserError as exc:  # e.g. a context without tokens: drop the internal names
            raise UserError(re.sub(r"^<predict>: question 'q\d+': ", "", str(exc))) from None
        preds = decode(
            self.plugin,
            self.cfg,
            dataset,
            feats,
            self._outputs(feats),
            null_threshold=self.null_threshold,
            version_2=self.version == "2.0",
        )
        answers = []
        for i, it in enumerate(items):
            qid = f"q{i}"
            nbest = [e for e in preds.nbest.get(qid, []) if e.get("text")]
            text = preds.predictions.get(qid, "")
            best = nbest[0] if nbest else None
            row = {
                "id": it["id"],
                "answer": text,
                "no_answer": text == "",
                "score": None
                if best is None
                else round(float(best["start_logit"] + best["end_logit"]), 4),
                "probability": None if best is None else round(float(best["probability"]), 4),
                "start": None if best is None or text == "" else int(best["start_char"]),
                "end": None if best is None or text == "" else int(best["end_char"]),
            }
            if self.top_k > 1:
                row["alternatives"] = [
                    {
                        "answer": e["text"],
                        "probability": round(float(e["probability"]), 4),
                        "start": int(e["start_char"]),
                        "end": int(e["end_char"]),
                    }
                    for e in nbest[: self.top_k]
                ]
            answers.append(row)
        return answers
