"""`nvlm benchmark infer`: inference throughput and latency percentiles, one process, a point
per precision x batch size.

Each timed call is one batch through the model's inference function (`tf.function`, XLA when
asked) ending with every output on the host, so a latency is what a caller waits for. BERT and
ELECTRA: SQuAD span logits (`squad`), classification logits of text pairs (`classify`,
`model.num_labels` outputs), encoder features (`features`) or the pretraining heads (`mlm`), on
synthetic features of the task's shape and padding. Transformer-XL: the evaluation
step of `nvlm eval` (log-probabilities of a segment of tgt_len tokens with mem_len of memory,
X1's tgt 64 / mem 640), the memory carried from one batch to the next as in evaluation.

Latency is per batch (what one request of `batch` sequences waits for) and per sequence
(per batch / batch); throughput = every timed sequence / the timed seconds, so
average latency x throughput = batch. Percentiles: numpy's linear interpolation between the
closest ranks of the timed calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nvlm.bench import timing
from nvlm.errors import UserError

TASKS = {
    "bert": ("squad", "classify", "features", "mlm"),
    "electra": ("squad", "classify", "features", "mlm"),
    "transformer-xl": ("lm",),
}
DISTINCT_BATCHES = 8  # inputs cycled through, so that no cache sees the same batch each call


@dataclass(frozen=True)
class InferSweep:
    model: str
    task: str
    preset: str | None
    size: str | None
    precisions: tuple[str, ...]
    batch_sizes: tuple[int, ...] | None
    seq_len: int | None
    mem_len: int | None
    xla: bool | None
    steps: int
    warmup: int
    init: str | None
    sets: tuple[str, ...]

    def stage(self, plugin) -> str:
        if plugin.name == "transformer-xl":
            return "eval"
        if self.task in ("squad", "classify"):
            return self.task  # the preset's fine-tuning section: its head, batch, seq_len
        return "pretrain_phase1"

    def flags(self, precision: str) -> dict[str, Any]:
        from nvlm.registry import canonical

        given = {s.partition("=")[0].strip() for s in self.sets}
        lm = canonical(self.model) == "transformer-xl"
        flags: dict[str, Any] = {
            "train.precision": precision,
            "train.xla": self.xla,
            "model.size": self.size,
            "data.seq_len": self.seq_len,
        }
        if lm:
            # X1's evaluation settings, the published inference tables' (the preset's eval
            # stage says the same).
            flags.update({
                "data.seq_len": self.seq_len or 64,
                "model.mem_len": self.mem_len if self.mem_len is not None else 640,
            })  # fmt: skip
            for key, value in (("model.clamp_len", 400), ("model.same_length", True)):
                if key not in given:
                    flags[key] = value
        if not lm and self.seq_len and "data.max_predictions" not in given:
            # Masked positions per sequence (BERT's mlm head): the recipe's 15%, at most its 20;
            # a short --seq-len must not fail on a setting only training needs.
            flags["data.max_predictions"] = min(20, max(1, round(0.15 * self.seq_len)))
        if self.task == "squad":
            from nvlm.bench.train_bench import squad_flags

            flags.update(squad_flags(self.seq_len))
        return flags


def check_sweep(sweep: InferSweep, plugin) -> None:
    tasks = TASKS.get(plugin.name)
    if tasks is None:
        raise UserError(f"nvlm benchmark infer does not know model {plugin.name!r}")
    if sweep.task not in tasks:
        raise UserError(
            f"--task {sweep.task!r}: {plugin.name} inference tasks are {', '.join(tasks)}"
        )
    if sweep.mem_len is not None and plugin.name != "transformer-xl":
        raise UserError("--mem-len applies to transformer-xl only (drop it)")
    if sweep.steps < 1 or sweep.warmup < 0:
        raise UserError("--steps must be >= 1 and --warmup >= 0")


def resolve(plugin, sweep: InferSweep, precision: str):
    from nvlm.resolve import resolve_training_config

    cfg, notes = resolve_training_config(
        plugin,
        stage=sweep.stage(plugin),
        preset=sweep.preset,
        data=None,
        init=sweep.init,
        config_file=None,
        sets=list(sweep.sets),
        flags={**sweep.flags(precision), "train.gpus": 1},
    )
    return cfg, notes


def batch_sizes(sweep: InferSweep, cfg) -> tuple[int, ...]:
    """--batch-sizes, else 1 and the preset's inference batch (data.eval_batch_size)."""
    if sweep.batch_sizes:
        return sweep.batch_sizes
    return tuple(sorted({1, cfg.data.eval_batch_size}))


# ------------------------------------------------------------------------------- one point
def measure_point(
    plugin,
    cfg,
    *,
    task: str,
    batch: int,
    steps: int,
    warmup: int,
    init: str | None = None,
    clock: timing.Clock = time.perf_counter,
) -> dict[str, Any]:
    import keras

    from nvlm.train.precision import set_precision

    keras.backend.clear_session()
    set_precision(cfg.train.precision)
    keras.utils.set_random_seed(cfg.train.seed)
    if plugin.name == "transformer-xl":
        call, tokens_per_sequence, flops = _lm_call(plugin, cfg, batch, init)
    else:
        call, tokens_per_sequence, flops = _encoder_call(plugin, cfg, task, batch, init)
    timing.memory_start()
    # Every distinct input batch once before timing: a first sight of a batch costs oneDNN
    # primitive creation (~20 ms measured at batch 1) that a serving loop pays once.
    warm = timing.time_calls(call, max(warmup, DISTINCT_BATCHES), clock)
    lat = timing.Latencies(tuple(timing.time_calls(call, steps, clock)))
    memory, memory_kind = timing.memory_peak()
    per_seq = timing.Latencies(tuple(s / batch for s in lat.seconds))
    seq_s = lat.per_second(batch)
    peak = _peak(cfg)
    return {
        "kind": "infer",
        "model": plugin.name,
        "task": task,
        "stage": cfg.stage,
        "size": cfg.model.size,
        "precision": cfg.train.precision,
        "xla": cfg.train.xla,
        "batch": batch,
        "seq_len": cfg.data.seq_len,
        "mem_len": getattr(cfg.model, "mem_len", None) if plugin.name == "transformer-xl" else None,
        "gpus": 1,
        "warmup_steps": len(warm),
        "steps": lat.count,
        "first_call_s": warm[0] if warm else None,
        "warmup_s": sum(warm),
        "throughput_seq_per_s": seq_s,
        "throughput_tok_per_s": seq_s * tokens_per_sequence,
        "unit": "tokens/s" if plugin.name == "transformer-xl" else "sequences/s",
        "latency_per": "batch",
        **lat.summary("latency"),
        **per_seq.summary("latency_per_sequence"),
        "mfu": seq_s * flops / peak if peak and flops else None,
        "peak_tflops": None if not peak else peak / 1e12,
        "flops_per_sequence": flops,
        "memory_mb": memory,
        "memory_kind": memory_kind,
        "percentile_method": timing.PERCENTILE_METHOD,
    }


def _peak(cfg) -> float | None:
    from nvlm.train.peak import peak_flops

    try:
        return peak_flops(cfg.train.precision, 1)
    except Exception:  # noqa: BLE001 - without a peak the record says MFU n/a
        return None


def _load(plugin, model, cfg, init: str | None, task: str) -> None:
    if init:
        plugin.load_init(model, cfg, init, task)


def _encoder_call(plugin, cfg, task: str, batch: int, init: str | None):
    import tensorflow as tf

    from nvlm.bench import synthetic

    seq = cfg.data.seq_len
    model = plugin.build(cfg, task)
    if task == "squad":
        arrays = synthetic.squad_arrays(
            examples=batch * DISTINCT_BATCHES, seq_len=seq, vocab_size=cfg.model.vocab_size,
            max_query_len=cfg.data.max_query_len, seed=cfg.train.seed, targets=False,
        )  # fmt: skip
    elif task == "classify":
        from nvlm.bench.train_bench import classify_features

        feats = classify_features(cfg, batch * DISTINCT_BATCHES)
        arrays = {k: getattr(feats, k) for k in ("input_ids", "input_mask", "segment_ids")}
    else:
        arrays = _pretraining_arrays(plugin, cfg, batch * DISTINCT_BATCHES)
    _load(plugin, model, cfg, init, task)
    keys = ["input_ids", "input_mask", "segment_ids"]
    if task == "mlm" and plugin.name == "bert":
        keys.append("masked_lm_positions")
    batches = [
        {k: tf.constant(arrays[k][i * batch : (i + 1) * batch].astype(np.int32)) for k in keys}
        for i in range(DISTINCT_BATCHES)
    ]
    forward = tf.function(
        lambda b: model(b, training=False), jit_compile=bool(cfg.train.xla), reduce_retracing=True
    )
    state = {"k": 0}

    def call() -> None:
        out = forward(batches[state["k"] % DISTINCT_BATCHES])
        state["k"] += 1
        for value in tf.nest.flatten(out):
            value.numpy()  # on the host: the caller's latency

    # Each task's own count; mlm times the pretraining heads.
    flops_task = {"squad": "squad", "classify": "classify", "mlm": "pretrain"}.get(task, "features")
    lengths = arrays["input_mask"][: batch * DISTINCT_BATCHES].astype(bool).sum(axis=1)
    flops = _inference_flops(plugin, cfg, lengths, flops_task)
    return call, seq, flops


def _inference_flops(plugin, cfg, lengths, task: str) -> float:
    """Forward FLOPs of one sequence, counted at the real lengths of the timed inputs (the
    encoders skip padding): a third of the training count (forward + backward = 3x forward,
    the convention of every MFU nvlm prints)."""
    from nvlm.train.trainer import sequence_flops

    return sequence_flops(lambda n: plugin.flops_per_token(cfg, n, task=task), lengths) / 3.0


def _pretraining_arrays(plugin, cfg, examples: int) -> dict[str, np.ndarray]:
    """Encoder inputs with pretraining statistics (BERT: with masked positions), read from a
    synthetic shard written to a temporary directory."""
    import tempfile
    from pathlib import Path

    import h5py

    from nvlm.bench import synthetic

    with tempfile.TemporaryDirectory(prefix="nvlm-bench-") as tmp:
        directory = synthetic.pretraining_shards(
            Path(tmp) / "shards",
            model="bert" if plugin.name == "bert" else "electra",
            vocab_size=cfg.model.vocab_size,
            seq_len=cfg.data.seq_len,
            max_predictions=cfg.data.max_predictions if plugin.name == "bert" else None,
            examples=examples,
            seed=cfg.train.seed,
        )
        with h5py.File(directory / "shard-00000.hdf5", "r") as f:
            return {k: np.asarray(f[k][:]) for k in f}


def _lm_call(plugin, cfg, batch: int, init: str | None):
    import tensorflow as tf

    from nvlm.bench import synthetic
    from nvlm.models.transformer_xl.evaluation import _step_fn

    model = plugin.build(cfg, "lm")
    tgt, mem = cfg.data.seq_len, cfg.model.mem_len
    # A stream per row, as evaluation reads a split: consecutive segments of each row.
    segments = DISTINCT_BATCHES
    ids = synthetic.lm_ids(tokens=batch * (segments * tgt + 1), vocab_size=cfg.model.vocab_size,
                           seed=cfg.train.seed).reshape(batch, segments * tgt + 1)  # fmt: skip
    _load(plugin, model, cfg, init, "lm")
    step = _step_fn(model, bool(cfg.train.xla))
    state = {"k": 0, "memory": model.empty_memory(batch, mem)}

    def call() -> None:
        k = state["k"] % segments
        cols = slice(k * tgt, (k + 1) * tgt)
        logp, state["memory"] = step(
            tf.constant(ids[:, cols]),
            tf.constant(ids[:, k * tgt + 1 : (k + 1) * tgt + 1]),
            state["memory"],
            tf.constant(min(state["k"] * tgt, mem), tf.int32),
        )
        logp.numpy()
        state["k"] += 1

    flops = plugin.flops_per_token(cfg, tgt) * tgt / 3.0
    return call, tgt, flops
