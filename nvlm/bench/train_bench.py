"""`nvlm benchmark train`: training throughput of a sweep of points (precision x processes x
per-process batch), each timed with the training loop `nvlm pretrain|finetune` runs.

A point is the training code path itself: the config resolved as `nvlm pretrain` resolves it
(preset, size, `--set`, accumulation re-derived for the process count), the model plugin's
`train_spec` on real or synthetic data in the real on-disk format (SQuAD and classify: the
task's own `spec_from_arrays` / `spec_from_features` on synthetic features made in memory, the
spec `nvlm finetune` builds from featurized files), the shared `Trainer`'s step
(forward, backward, accumulation, allreduce, LAMB/AdamW), and for more than one process the
launcher `nvlm pretrain --gpus N` uses. Checkpoints, logs and evaluation are off while timing.

Per point: `warmup` steps run first (their time is reported: the first is tracing and XLA
compilation), then `steps` timed steps, each ending with its values on the host. Throughput =
global batch x timed steps / their total time (the published tables' average over
steady-state steps). On several processes, the grouped allreduce of one step's gradients is
then timed alone, as a share of the step.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvlm.bench import timing
from nvlm.errors import UserError
from nvlm.run_dir import SUMMARY

# Synthetic examples written per sweep at most: a point needing more cycles through them
# (epochs), which costs nothing in a step and keeps a big-GPU sweep's data under ~1 GB.
MAX_SYNTHETIC_EXAMPLES = 20_000
ALLREDUCE_CALLS = 10


@dataclass(frozen=True)
class Point:
    precision: str | None  # None = the preset's / fp32
    gpus: int
    batch: int | None  # per process; None = the preset's / default

    def label(self) -> str:
        batch = "default batch" if self.batch is None else f"batch {self.batch}"
        precision = self.precision or "default precision"
        return f"{precision}, {self.gpus} process{'es' if self.gpus > 1 else ''}, {batch}"


@dataclass(frozen=True)
class TrainSweep:
    model: str
    task: str  # pretrain | squad | classify
    phase: int
    preset: str | None
    size: str | None
    precisions: tuple[str, ...]
    batch_sizes: tuple[int | None, ...]
    gpus: tuple[int, ...]
    seq_len: int | None
    accumulation: int | None
    xla: bool | None
    steps: int
    warmup: int
    data: Path | None
    init: str | None
    sets: tuple[str, ...]

    def points(self) -> list[Point]:
        return [
            Point(precision, gpus, batch)
            for gpus in self.gpus
            for batch in self.batch_sizes
            for precision in self.precisions
        ]

    def stage(self, plugin) -> str:
        if self.task in ("squad", "classify"):
            return self.task  # the preset's fine-tuning section, as `nvlm finetune` reads it
        return plugin.pretrain_stage(self.phase)

    def flags(self, point: Point) -> dict[str, Any]:
        flags: dict[str, Any] = {
            "train.gpus": point.gpus,
            "train.precision": point.precision,
            "train.batch_size": point.batch,
            "train.accumulation": self.accumulation,
            "train.xla": self.xla,
            "model.size": self.size,
            # Nothing but the timed steps: no checkpoint, no log line inside the sweep.
            "train.steps": self.warmup + self.steps,
            "train.checkpoint_every": self.warmup + self.steps + 1,
            "train.log_every": self.warmup + self.steps + 1,
        }
        if self.seq_len is not None:
            flags["data.seq_len"] = self.seq_len
        if self.task == "squad":
            flags.update(squad_flags(self.seq_len))
        return flags


def squad_flags(seq_len: int | None) -> dict[str, int]:
    """SQuAD window settings that fit `seq_len` (default 384, the published tables' length):
    a query of at most 64 tokens and a document stride the config accepts (synthetic features
    are not strided; the config checks that the windows fit)."""
    seq = seq_len or 384
    query = min(64, max(1, seq // 4))
    return {
        "data.seq_len": seq,
        "data.max_query_len": query,
        "data.doc_stride": max(1, min(128, seq - query - 3)),
    }


def resolve(plugin, sweep: TrainSweep, point: Point, data: Path | None):
    from nvlm.resolve import resolve_training_config

    pretrain_data = data if sweep.task == "pretrain" else None
    return resolve_training_config(
        plugin,
        stage=sweep.stage(plugin),
        preset=sweep.preset,
        data=pretrain_data,
        init=sweep.init,
        config_file=None,
        sets=list(sweep.sets),
        flags=sweep.flags(point),
    )


# ----------------------------------------------------------------------------- synthetic data
def synthetic_data(plugin, sweep: TrainSweep, cfgs: list, directory: Path) -> Path | None:
    """Write the sweep's synthetic data in the real format (pretraining: shards / an LM corpus;
    SQuAD, classify: none, their features are made in memory by each rank), sized for its
    largest point."""
    from nvlm.bench import synthetic

    if sweep.task in ("squad", "classify"):
        return None
    cfg = cfgs[0]
    need = max(c.global_batch * (sweep.steps + sweep.warmup) for c in cfgs)
    if plugin.name == "transformer-xl":
        # One stream row per sequence of the global batch, long enough for every step's
        # segment (a few thousand tokens per row at most: the corpus wraps around).
        batch = max(c.global_batch for c in cfgs)
        segments = min(sweep.steps + sweep.warmup, 64) + 2
        tokens = batch * (cfg.data.seq_len * segments + 1)
        return synthetic.lm_corpus(
            directory, vocab_size=cfg.model.vocab_size, tokens=tokens, seed=cfg.train.seed
        )
    examples = min(max(need, 2 * max(c.train.batch_size * c.train.gpus for c in cfgs)),
                   MAX_SYNTHETIC_EXAMPLES)  # fmt: skip
    return synthetic.pretraining_shards(
        directory,
        model=plugin.name,
        vocab_size=cfg.model.vocab_size,
        seq_len=cfg.data.seq_len,
        max_predictions=cfg.data.max_predictions if plugin.name == "bert" else None,
        examples=examples,
        seed=cfg.train.seed,
    )


def squad_arrays(plugin, cfg, examples: int) -> dict:
    from nvlm.bench import synthetic

    return synthetic.squad_arrays(
        examples=examples,
        seq_len=cfg.data.seq_len,
        vocab_size=cfg.model.vocab_size,
        max_query_len=cfg.data.max_query_len,
        seed=cfg.train.seed,
        version_2=cfg.data.squad_version == "2.0",
    )


def classify_features(cfg, examples: int):
    """Synthetic text pairs of the run's sequence length and label count (`model.num_labels`;
    1: regression targets), as `nvlm.tasks.classify.featurize` lays them out."""
    from nvlm.bench.synthetic_classify import classify_features as make

    return make(examples=examples, seq_len=cfg.data.seq_len, vocab_size=cfg.model.vocab_size,
                num_labels=cfg.model.num_labels, seed=cfg.train.seed)  # fmt: skip


def _fine_tuning_examples(cfg, steps: int) -> int:
    """In-memory fine-tuning examples of a point: twice a process's share of its steps, at
    least two micro-batches (the order cycles through them endlessly: more would only cost
    memory)."""
    need = cfg.train.batch_size * steps * cfg.train.accumulation * 2
    return max(min(need, MAX_SYNTHETIC_EXAMPLES), 2 * cfg.train.batch_size)


# ------------------------------------------------------------------------ one point, one rank
def measure_point(
    plugin,
    cfg,
    *,
    task: str,
    data: Path | None,
    run: Path,
    steps: int,
    warmup: int,
    init: str | None = None,
    world=None,
    clock: timing.Clock = time.perf_counter,
) -> dict[str, Any]:
    """Time `steps` training steps of `cfg` after `warmup` untimed ones, in this process (one
    rank of the point's job). Every rank returns the figures; rank 0's are the point's."""
    import keras
    import tensorflow as tf

    from nvlm.dist import world as get_world
    from nvlm.train.precision import set_precision
    from nvlm.train.trainer import Trainer

    world = world or get_world()
    keras.backend.clear_session()
    set_precision(cfg.train.precision)
    keras.utils.set_random_seed(cfg.train.seed)
    model = plugin.build(cfg, task)
    if init:
        plugin.load_init(model, cfg, init, task)
    if task == "squad" and data is None:
        from nvlm.tasks.squad import task as squad

        arrays = squad_arrays(plugin, cfg, _fine_tuning_examples(cfg, steps + warmup))
        spec = squad.spec_from_arrays(plugin, cfg, model, arrays, world)
    elif task == "classify" and data is None:
        from nvlm.tasks.classify import task as classify

        feats = classify_features(cfg, _fine_tuning_examples(cfg, steps + warmup))
        spec = classify.spec_from_features(plugin, cfg, model, feats, world)
    else:
        spec = plugin.train_spec(cfg, model, data, task, world, run=run, init=init)
    trainer = Trainer(spec, cfg.train, run, world=world, show_progress=False)
    world.broadcast(trainer.state.all_variables())
    batches = spec.batches(0)

    def step() -> None:
        trainer.step(batches)

    timing.memory_start()
    t0 = clock()
    warm = timing.time_calls(step, max(warmup, 0), clock)
    steps_s = timing.time_calls(step, steps, clock)
    elapsed = clock() - t0
    memory, memory_kind = timing.memory_peak()
    lat = timing.Latencies(tuple(steps_s))

    allreduce = None
    if world.size > 1:
        grads = [tf.zeros(s, tf.float32) for s in trainer.gradient_shapes()]
        smallest = min(range(len(grads)), key=lambda i: grads[i].shape.num_elements())

        def reduce() -> None:
            out = world.allreduce_grads(grads, compress_fp16=cfg.train.allreduce_fp16)
            out[smallest].numpy()  # the group completes together: one read-back syncs it

        timing.time_calls(reduce, 2, clock)
        allreduce = timing.Latencies(tuple(timing.time_calls(reduce, ALLREDUCE_CALLS, clock)))

    global_batch = cfg.global_batch
    seq_s = lat.per_second(global_batch)
    tokens = spec.tokens_per_example
    peak = _peak(cfg) if world.is_root else None
    mfu = seq_s * spec.flops_per_example / peak if peak and spec.flops_per_example else None
    t = cfg.train
    return {
        "kind": "train",
        "model": plugin.name,
        "task": "lm" if plugin.name == "transformer-xl" else task,
        "stage": cfg.stage,
        "size": cfg.model.size,
        "precision": t.precision,
        "xla": t.xla,
        "batch": t.batch_size,
        "seq_len": cfg.data.seq_len,
        "gpus": t.gpus,
        "world_size": world.size,  # the processes that really ran the point
        "accumulation": t.accumulation,
        "global_batch": global_batch,
        "warmup_steps": len(warm),
        "steps": len(steps_s),
        "throughput_seq_per_s": seq_s,
        "throughput_tok_per_s": seq_s * tokens,
        "throughput_per_process_seq_per_s": seq_s / t.gpus,
        "unit": "tokens/s" if plugin.name == "transformer-xl" else "sequences/s",
        "step_time": lat.summary("step"),
        "first_step_s": warm[0] if warm else None,
        "warmup_s": math.fsum(warm),
        "measured_s": elapsed,
        "allreduce_ms": None if allreduce is None else allreduce.mean_ms,
        "allreduce_share": None if allreduce is None else allreduce.mean_ms / lat.mean_ms,
        "mfu": mfu,
        "peak_tflops": None if not peak else peak / 1e12,
        "flops_per_sequence": spec.flops_per_example,
        "memory_mb": memory,
        "memory_kind": memory_kind,
        "percentile_method": timing.PERCENTILE_METHOD,
    }


def _peak(cfg) -> float | None:
    from nvlm.train.peak import peak_flops

    try:
        return peak_flops(cfg.train.precision, cfg.train.gpus)
    except Exception:  # noqa: BLE001 - without a peak the record says MFU n/a
        return None


def rank_job(plugin, *, task: str, data: Path | None, run: Path, steps: int, warmup: int,
             init: str | None):  # fmt: skip
    """The `train` callable of a point's `TrainingJob`: measure, and on rank 0 write the
    figures to RUN/summary.json, which the launching process reads."""

    def train(cfg, resume: bool, overwrite: bool) -> dict:
        from nvlm.dist import world as get_world

        world = get_world()
        record = measure_point(plugin, cfg, task=task, data=data, run=run, steps=steps,
                               warmup=warmup, init=init, world=world)  # fmt: skip
        from nvlm.launch.ranks import is_child

        if world.is_root and is_child():  # the launching process reads it
            from nvlm.outputs import write_text

            write_text(Path(run) / SUMMARY, json.dumps(record, indent=2) + "\n")
        world.barrier()
        return record

    return train


def check_sweep(sweep: TrainSweep, plugin) -> None:
    if sweep.task not in ("pretrain", "squad", "classify"):
        raise UserError(f"--task {sweep.task!r}: choose pretrain, squad or classify")
    if sweep.task == "squad" and "squad" not in plugin.tasks:
        raise UserError(f"--task squad: {plugin.name} has no SQuAD head (use --task pretrain)")
    if sweep.task == "classify" and "classify" not in plugin.tasks:
        raise UserError(
            f"--task classify: {plugin.name} has no classification head (use --task pretrain)"
        )
    if sweep.task == "pretrain" and "pretrain" not in plugin.tasks:
        raise UserError(f"--task pretrain: {plugin.name} cannot be pretrained here")
    if sweep.task in ("squad", "classify") and sweep.data is not None and not sweep.init:
        what = "SQuAD features" if sweep.task == "squad" else "text pairs"
        raise UserError(
            f"--task {sweep.task} --data FILE needs --init CHECKPOINT (its vocab tokenizes the "
            f"file); drop --data to time synthetic {what}"
        )
    if sweep.steps < 1 or sweep.warmup < 0:
        raise UserError("--steps must be >= 1 and --warmup >= 0")
