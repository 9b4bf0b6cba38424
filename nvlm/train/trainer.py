"""The training loop every model uses.

One optimizer step = `accumulation` micro-batches per rank:
  count (train.loss_normalization=step_tokens, token-level losses): the targets of the step's
     micro-batches, summed over ranks with one small allreduce (nvlm.train.losses)
  -> compute (forward + backward, optionally XLA-compiled, gradients added to fp32
     accumulators): each micro-batch's summed loss over the step's count
  -> apply (NOT under XLA: Horovod ops have no XLA kernel): one grouped allreduce (a sum of
     the ranks' gradients; micro_batch: an average of the micro-batch means), loss-scale
     check, global-norm clip, LAMB/AdamW update.
With accumulation 1 the gradients go straight from compute to apply (no accumulator traffic).

The data position, step, loss scale, optimizer slots and every model variable (dropout RNG
state included) are checkpointed, so re-running the same command continues a killed run to the
same final weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from nvlm.dist import SingleProcess
from nvlm.report import info, warn
from nvlm.run_dir import CHECKPOINTS, METRICS, TENSORBOARD
from nvlm.train.adamw import AdamW
from nvlm.train.best import BestCheckpoint, check_metric
from nvlm.train.lamb import Lamb
from nvlm.train.loss_scale import LossScale
from nvlm.train.losses import is_terms, micro_batch_mean, step_share, weighted_sum
from nvlm.train.progress import Progress
from nvlm.train.schedule import learning_rate, warmup_steps_for
from nvlm.train.state import Checkpoints, TrainState

LossFn = Callable[..., tuple[tf.Tensor, dict[str, tf.Tensor]]]


@dataclass
class TrainSpec:
    """What a model plugin hands to the loop."""

    model: object  # keras.Model
    # (model, batch, training) -> (loss, {name: scalar metric}); the loss is a scalar (a mean
    # over the micro-batch's rows) or {name: nvlm.train.losses.Term} (sums over targets).
    loss_fn: LossFn
    batches: Callable[[int], Iterator[dict[str, np.ndarray]]]  # start example -> micro-batches
    tokens_per_example: int
    flops_per_example: float = 0.0  # training FLOPs (fwd + bwd) of its real tokens, for MFU
    metric_units: dict[str, str] = field(default_factory=dict)
    lr_multipliers: list[float] | None = None
    extra_state: list = field(default_factory=list)  # e.g. recurrent memories
    total_steps: int | None = None  # when the task derives it (epochs x examples / batch)
    # Called on EVERY rank right before rank 0 writes a checkpoint (a collective may run in it:
    # Transformer-XL gathers each rank's memories into the state rank 0 saves).
    before_checkpoint: Callable[[object], None] | None = None
    # Held-out figures ({name: value}, units in `eval_units`), computed every `eval_every`
    # steps (and after the last step) and logged with an "eval_" prefix by rank 0. None: no
    # evaluation while training. It must not change the state a checkpoint saves.
    evaluate: Callable[[], dict[str, float]] | None = None
    eval_every: int = 0
    eval_units: dict[str, str] = field(default_factory=dict)
    # Every rank calls `evaluate` (each evaluates its share, a collective adds them up);
    # False: rank 0 alone, while the others wait at the next step's allreduce.
    eval_shared: bool = False
    # Token-level losses: batch -> {term name: number of its targets in the batch}, the counts
    # of `loss_fn`'s terms, computed before the step to normalise by the step's targets.
    counts: Callable[[dict], dict[str, tf.Tensor]] | None = None


def sequence_flops(flops_per_token: Callable[[int], float], lengths) -> float:
    """Mean FLOPs of one sequence over sequences of real lengths `lengths`: per-token FLOPs at
    each length x that length. MFU counts the work of the real tokens: the encoders skip
    padding in their per-token layers, so FLOPs counted at the padded length credit them with
    work they did not do (measured: BERT-base SQuAD inference at "185%" of the peak on SQuAD-
    like features, 41% real tokens)."""
    values, counts = np.unique(np.asarray(lengths, np.int64), return_counts=True)
    total = sum(
        flops_per_token(int(n)) * int(n) * int(c) for n, c in zip(values, counts, strict=True)
    )
    return float(total) / max(int(counts.sum()), 1)


@dataclass
class TrainResult:
    steps: int
    examples: int
    total_time_s: float
    measured_time_s: float
    measured_examples: int
    sequences_per_s: float
    tokens_per_s: float
    mfu: float | None
    skipped_steps: int
    final_metrics: dict[str, float]
    checkpoint: str | None
    resumed_from: int
    already_complete: bool = False  # RUN had reached its last step: nothing was trained
    signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM), if any


class Trainer:
    """Runs `train.steps` optimizer steps of a `TrainSpec` into a run directory."""

    def __init__(
        self,
        spec: TrainSpec,
        train_cfg,
        run_dir: Path,
        *,
        world=None,
        peak_flops: float | None = None,
        total_steps: int | None = None,
        show_progress: bool = True,
        stop_after: int | None = None,
    ) -> None:
        self.spec = spec
        self.cfg = train_cfg
        self.run_dir = Path(run_dir)
        self.world = world or SingleProcess()
        self.peak_flops = peak_flops
        self.total_steps = int(total_steps or spec.total_steps or train_cfg.steps)
        self.show_progress = show_progress
        self.stop_after = stop_after  # testing aid: stop (without final save) after N steps
        # train.keep_best: a figure the run does not evaluate is refused here, before the
        # optimizer is built and any step runs (on every rank; rank 0 alone writes RUN/best).
        self.best = None
        if train_cfg.keep_best:
            metric, mode = check_metric(
                train_cfg.keep_best,
                spec.evaluate is not None and spec.eval_every > 0,
                spec.eval_units,
            )
            self.best = BestCheckpoint(self.run_dir, metric, mode, owner=self.world.is_root)
        self.global_batch = train_cfg.batch_size * train_cfg.accumulation * self.world.size
        # Normalise by the step's targets (gradients summed over micro-batches and ranks), or
        # per micro-batch (gradients averaged): nvlm.train.losses.
        self.by_step = train_cfg.loss_normalization == "step_tokens"
        self.parts = train_cfg.accumulation * self.world.size  # micro-batches of one step
        model = spec.model
        self.trainable = list(model.trainable_variables)
        opt_cls = {"lamb": Lamb, "adamw": AdamW}[train_cfg.optimizer]
        self.optimizer = opt_cls(
            self.trainable,
            beta1=train_cfg.beta1,
            beta2=train_cfg.beta2,
            epsilon=train_cfg.epsilon,
            weight_decay=train_cfg.weight_decay,
            lr_multipliers=spec.lr_multipliers,
        )
        self.loss_scale = LossScale(train_cfg.precision == "amp")
        self.state = TrainState(model, self.optimizer, self.loss_scale)
        self.state.add_extra(spec.extra_state)
        self.accums = None
        if train_cfg.accumulation > 1:
            self.accums = [
                tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in self.trainable
            ]
        self.warmup = warmup_steps_for(
            self.total_steps, train_cfg.warmup_steps, train_cfg.warmup_proportion
        )
        self._compute = tf.function(
            self._compute_impl, jit_compile=bool(train_cfg.xla), reduce_retracing=True
        )
        self._count = tf.function(spec.counts) if spec.counts is not None else None
        self._apply = tf.function(self._apply_impl)
        self.last_eval: dict[str, float] = {}  # the latest held-out figures (rank 0)
        self.stop_agreed = tf.Variable(False, trainable=False)  # any rank asked to stop
        self._stop_requested = False  # a signal arrived (this rank)
        self._signal: int | None = None  # which one
        self._stopped = False  # every rank agreed to stop after the current step

    # ----------------------------------------------------------------- graph functions
    def _compute_impl(self, batch, denominators=None):
        with tf.GradientTape() as tape:
            loss, metrics = self.spec.loss_fn(self.spec.model, batch, True)
            objective, logged = self._objective(loss, denominators)
            scaled = objective * self.loss_scale.scale if self.loss_scale.enabled else objective
        grads = tape.gradient(scaled, self.trainable)
        grads = [
            tf.zeros(v.shape, tf.float32) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, self.trainable, strict=True)
        ]
        metrics = {k: tf.cast(v, tf.float32) for k, v in metrics.items()}
        metrics.update(logged)
        if self.accums is None:
            return grads, metrics
        for acc, g in zip(self.accums, grads, strict=True):
            acc.assign_add(tf.cast(g, tf.float32))
        return [], metrics

    def _objective(self, loss, denominators):
        """(what this micro-batch's backward pass differentiates, the figures it logs).

        The logged losses are means per target: in step_tokens mode this micro-batch's share
        of the step's mean x the step's micro-batches (`parts`), so that the log's average
        over the micro-batches and ranks of a step is the step's mean."""
        if not is_terms(loss):  # a mean over the rows; every micro-batch has as many
            mean = tf.cast(loss, tf.float32)
            return (mean / self.parts if self.by_step else mean), {"loss": mean}
        if not self.by_step:
            means = micro_batch_mean(loss)
            mean = weighted_sum(loss, means)
            logged = {k: v for k, v in means.items() if loss[k].logged}
            return mean, {**logged, "loss": mean}
        if denominators is None:
            raise ValueError("a loss of terms needs TrainSpec.counts for step_tokens")
        shares = step_share(loss, denominators)
        objective = weighted_sum(loss, shares)
        logged = {k: v * self.parts for k, v in shares.items() if loss[k].logged}
        return objective, {**logged, "loss": objective * self.parts}

    def _denominators(self, micro_batches) -> dict[str, tf.Tensor] | None:
        """Each term's number of targets in the step: this rank's micro-batches, then summed
        over the ranks (one small allreduce; counted in float64, exact)."""
        if not self.by_step or self._count is None:
            return None
        totals: dict[str, float] = {}
        for batch in micro_batches:
            for k, v in self._count(batch).items():
                totals[k] = totals.get(k, 0.0) + float(v)
        keys = sorted(totals)
        summed = self.world.allreduce_sum(
            tf.constant([totals[k] for k in keys], tf.float64), name="nvlm_step_targets"
        )
        return {
            k: tf.constant(v, tf.float32) for k, v in zip(keys, np.asarray(summed), strict=True)
        }

    def _apply_impl(self, grads, stop=None):
        cfg = self.cfg
        stop = tf.constant(0.0) if stop is None else tf.cast(stop, tf.float32)
        if self.accums is not None:
            grads = [tf.identity(a) for a in self.accums]
        grads = [tf.cast(g, tf.float32) for g in grads]
        if cfg.accumulation > 1 and not self.by_step:
            grads = [g / float(cfg.accumulation) for g in grads]
        # One grouped allreduce per optimizer step, after accumulation (identity in 1 process):
        # a sum when each rank's loss is its share of the step's mean, else an average. A stop
        # request (SIGTERM, Ctrl-C) of any rank rides along, so that every rank stops after the
        # same step and rank 0's checkpoint is the state of all of them.
        reduced = self.world.allreduce_grads(
            [*grads, stop], compress_fp16=cfg.allreduce_fp16, average=not self.by_step
        )
        grads = reduced[:-1]
        self.stop_agreed.assign(reduced[-1] > 0)
        # Factors on every gradient (1 / loss scale, the clip) are applied inside the
        # optimizer's fused updates rather than as passes over all gradients.
        unscale = 1.0 / self.loss_scale.scale if self.loss_scale.enabled else tf.constant(1.0)
        # Decided after the allreduce, so every rank takes the same decision. The global norm
        # is finite exactly when every gradient is (an inf or NaN anywhere makes it inf or
        # NaN; finite fp32 squares overflow only for gradients above ~1e15, which a step
        # should skip too): one pass over the gradients instead of two (33 ms of a BERT-base
        # step on 2 CPU cores).
        grad_norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(grad_norm)
        grad_norm = grad_norm * unscale
        factor = unscale
        if cfg.clip_norm and cfg.clip_norm > 0:
            # tf.clip_by_global_norm's factor.
            factor = unscale * cfg.clip_norm / tf.maximum(grad_norm, cfg.clip_norm)
        lr = learning_rate(
            self.state.step,
            base_lr=self.effective_lr,
            total_steps=self.total_steps,
            warmup_steps=self.warmup,
            schedule=cfg.schedule,
            decay_power=cfg.decay_power,
            min_lr_ratio=cfg.min_lr_ratio,
        )

        def do_apply():
            self.optimizer.apply(grads, lr, grad_scale=factor)
            return tf.constant(0, tf.int64)

        def skip():
            return tf.constant(1, tf.int64)

        skipped = tf.cond(finite, do_apply, skip) if self.loss_scale.enabled else do_apply()
        self.state.skipped.assign_add(skipped)
        self.loss_scale.update(finite)
        self.state.step.assign_add(1)
        self.state.examples.assign_add(self.global_batch)
        if self.accums is not None:
            for acc in self.accums:
                acc.assign(tf.zeros_like(acc))
        return lr, grad_norm, self.loss_scale.scale

    def step(
        self, batches: Iterator, stop: bool = False
    ) -> tuple[list[dict[str, float]], float, float, float]:
        """One optimizer step on the next `accumulation` micro-batches of `batches`: (each
        micro-batch's metrics, lr, gradient norm, loss scale). It returns once the step's
        values are on the host, so its wall time is the step's (`nvlm benchmark` times it)."""
        micro = []
        micro_batches = [next(batches) for _ in range(self.cfg.accumulation)]
        denominators = self._denominators(micro_batches)
        for batch in micro_batches:
            if denominators is None:
                grads, metrics = self._compute(batch)
            else:
                grads, metrics = self._compute(batch, denominators)
            micro.append({k: float(v) for k, v in metrics.items()})
        lr, grad_norm, scale = (
            float(x) for x in self._apply(grads, tf.constant(1.0 if stop else 0.0))
        )
        return micro, lr, grad_norm, scale

    def gradient_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the gradients one step allreduces (fp32), for timing the allreduce alone."""
        return [tuple(v.shape) for v in self.trainable]

    @property
    def effective_lr(self) -> float:
        # BERT's TF2 recipe states a per-GPU learning rate: effective lr = lr x GPUs.
        return self.cfg.lr * (self.world.size if self.cfg.lr_per_gpu else 1)

    # ----------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        cfg, world = self.cfg, self.world
        # From here on a signal stops the run after a step, with a checkpoint.
        self._install_signal_handlers()
        ckpts = Checkpoints(self.state, self.run_dir / CHECKPOINTS, cfg.keep_checkpoints)
        try:
            restored = ckpts.restore_latest(owner=world.is_root, say=warn)
        except BaseException:
            self._restore_signal_handlers()
            raise
        # Every rank starts from rank 0's weights and optimizer state (after a restore too), and
        # from its step and data position (a rank that cannot see the checkpoint still resumes).
        world.broadcast(self.state.all_variables())
        if world.size > 1:
            self._decorrelate_dropout(world.rank)
        start_step = int(self.state.step.numpy())
        if start_step >= self.total_steps:
            # A finished run: report it, change nothing (no log rewrite, no new summary).
            self._restore_signal_handlers()
            return self._complete(start_step, restored)
        if restored:
            info(
                f"resuming {self.run_dir} from step {start_step} of {self.total_steps} "
                f"(checkpoint {Path(restored).name})"
            )
        crash = _injected_crash(world.rank)
        log = _MetricsLog(self.run_dir, enabled=world.is_root, resume_step=start_step)
        progress = Progress(
            self.total_steps, start_step, enabled=world.is_root and self.show_progress
        )

        batches = self.spec.batches(int(self.state.examples.numpy()))
        step = start_step
        t_start = time.perf_counter()
        measure_from = min(
            start_step + max(1, min(10, (self.total_steps - start_step) // 10)),
            self.total_steps - 1,
        )
        t_measure = None
        measured_examples = 0
        window: dict[str, list[float]] = {}
        t_window, ex_window = time.perf_counter(), 0
        last_ckpt = restored
        final_metrics: dict[str, float] = {}
        lr = grad_norm = scale = 0.0
        try:
            while step < self.total_steps:
                if crash is not None and step + 1 == crash[0]:
                    _crash(crash[1], world.rank, step + 1)
                if step == measure_from:
                    t_measure = time.perf_counter()
                micro, lr, grad_norm, scale = self.step(batches, self._stop_requested)
                for metrics in micro:
                    for k, v in metrics.items():
                        window.setdefault(k, []).append(v)
                # The agreed decision, never the local flag: a signal handled after the
                # allreduce must not make this rank stop one step before the others.
                self._stopped = bool(self.stop_agreed.numpy())
                step += 1
                ex_window += self.global_batch
                if t_measure is not None:
                    measured_examples += self.global_batch
                if step % cfg.log_every == 0 or step == self.total_steps:
                    elapsed = time.perf_counter() - t_window
                    final_metrics = _mean_over_ranks(
                        world, {k: float(np.mean(v)) for k, v in window.items()}
                    )
                    figures = self._figures(
                        final_metrics, lr, grad_norm, scale, ex_window / max(elapsed, 1e-9)
                    )
                    log.write(step, figures, self._units())
                    progress.update(step, figures)
                    window, t_window, ex_window = {}, time.perf_counter(), 0
                else:
                    progress.advance(step)
                done = step == self.total_steps
                if self._evaluates_at(step, done):
                    self._evaluate(step, log)
                if step % cfg.checkpoint_every == 0 or done or self._stopped:
                    if self.spec.before_checkpoint is not None:
                        self.spec.before_checkpoint(world)
                    if world.is_root:
                        last_ckpt = ckpts.save(step)
                if self._stopped:
                    break
                if self.stop_after is not None and step - start_step >= self.stop_after:
                    break
        finally:
            progress.close()
            log.close()
            self._restore_signal_handlers()
        total = time.perf_counter() - t_start
        measured = (time.perf_counter() - t_measure) if t_measure is not None else total
        if t_measure is None:
            measured_examples = (step - start_step) * self.global_batch
        seq_s = measured_examples / max(measured, 1e-9)
        mfu = None
        if self.peak_flops and self.spec.flops_per_example:
            mfu = seq_s * self.spec.flops_per_example / self.peak_flops
        return TrainResult(
            steps=step,
            examples=int(self.state.examples.numpy()),
            total_time_s=total,
            measured_time_s=measured,
            measured_examples=measured_examples,
            sequences_per_s=seq_s,
            tokens_per_s=seq_s * self.spec.tokens_per_example,
            mfu=mfu,
            skipped_steps=int(self.state.skipped.numpy()),
            final_metrics=final_metrics,
            checkpoint=last_ckpt,
            resumed_from=start_step,
            signal=(self._signal or signal.SIGTERM) if self._stopped else None,
        )

    def _evaluates_at(self, step: int, done: bool) -> bool:
        """The held-out set is evaluated every `eval_every` steps and after the last step: by
        every rank when the task shares it out (`eval_shared`), else by rank 0 (the others go
        on and wait for it at the next step's allreduce). A run stopped by a signal is not
        evaluated: its next run evaluates at the same steps."""
        spec = self.spec
        if spec.evaluate is None or spec.eval_every <= 0:
            return False
        if not (self.world.is_root or spec.eval_shared):
            return False
        return (step % spec.eval_every == 0 or done) and not self._stopped

    def _evaluate(self, step: int, log) -> None:
        t0 = time.perf_counter()
        figures = {f"eval_{k}": float(v) for k, v in self.spec.evaluate().items()}
        took = time.perf_counter() - t0
        if not self.world.is_root:  # a share of a shared evaluation: rank 0 reports it
            return
        self.last_eval = {k[5:]: v for k, v in figures.items()}
        units = {f"eval_{k}": u for k, u in self.spec.eval_units.items()}
        log.write(step, figures, units)
        shown = ", ".join(f"{k[5:]} {v:.4g}" for k, v in figures.items())
        info(f"step {step}: held-out {shown} ({took:.1f} s)")
        if self.best is not None:
            self.best.consider(step, figures, self.state)

    def _complete(self, step: int, checkpoint: str | None) -> TrainResult:
        return TrainResult(
            steps=step,
            examples=int(self.state.examples.numpy()),
            total_time_s=0.0,
            measured_time_s=0.0,
            measured_examples=0,
            sequences_per_s=0.0,
            tokens_per_s=0.0,
            mfu=None,
            skipped_steps=int(self.state.skipped.numpy()),
            final_metrics={},
            checkpoint=checkpoint,
            resumed_from=step,
            already_complete=True,
        )

    def _decorrelate_dropout(self, rank: int) -> None:
        # The broadcast gave every rank rank 0's Keras seed-generator states, hence the same
        # dropout masks on every rank's micro-batch. Offset the seed (not the counter) by rank:
        # rank 0 keeps the checkpointed state, so a resume (any world size) is deterministic.
        for var, path in zip(self.state.model_vars, self.state.model_paths, strict=True):
            if path.endswith("seed_generator_state"):
                var.assign_add(tf.constant([rank * _SEED_STRIDE, 0], dtype=var.dtype))

    def _figures(self, metrics, lr, grad_norm, scale, seq_s) -> dict[str, float]:
        figures = dict(metrics)
        figures.update(
            lr=lr,
            grad_norm=grad_norm,
            seq_per_s=seq_s,
            tok_per_s=seq_s * self.spec.tokens_per_example,
        )
        if self.loss_scale.enabled:
            figures["loss_scale"] = scale
        if self.world.size > 1:
            figures["seq_per_s_per_rank"] = seq_s / self.world.size
        return figures

    def _units(self) -> dict[str, str]:
        units = {
            "loss": "nats",
            "lr": "1",
            "grad_norm": "1",
            "seq_per_s": "sequences/s",
            "tok_per_s": "tokens/s",
            "loss_scale": "1",
            "seq_per_s_per_rank": "sequences/s",
        }
        units.update(self.spec.metric_units)
        return units

    def _install_signal_handlers(self) -> None:
        # SIGTERM (Slurm pre-emption, `kill`) and Ctrl-C: finish the current step, checkpoint,
        # exit. A second signal falls back to the default behaviour.
        def handler(signum, frame):
            if self._stop_requested:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)
            self._stop_requested = True
            self._signal = signum

        self._saved_handlers = {}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._saved_handlers[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread (e.g. some test runners)
            pass

    def _restore_signal_handlers(self) -> None:
        for signum, previous in getattr(self, "_saved_handlers", {}).items():
            signal.signal(signum, previous)

    @property
    def interrupted(self) -> bool:
        return self._stopped


_SEED_STRIDE = 1_000_003  # a prime, far from the small differences between layers' seeds


def _injected_crash(rank: int) -> tuple[int, str] | None:
    """TESTING ONLY (docs/distributed.md): NVLM_TEST_CRASH_RANK=r NVLM_TEST_CRASH_STEP=s make
    rank r fail at the start of step s; NVLM_TEST_CRASH_MODE=raise (an exception, default),
    exit (os._exit(3), no clean-up) or kill (SIGKILL). Used to check that a dead rank ends the
    job instead of hanging it."""
    target, at = os.environ.get("NVLM_TEST_CRASH_RANK"), os.environ.get("NVLM_TEST_CRASH_STEP")
    if target is None or at is None or int(target) != rank:
        return None
    return int(at), os.environ.get("NVLM_TEST_CRASH_MODE", "raise")


def _crash(mode: str, rank: int, step: int) -> None:
    print(f"NVLM_TEST_CRASH: rank {rank}, step {step}, mode {mode}", file=sys.stderr, flush=True)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "exit":
        os._exit(3)
    raise RuntimeError(f"injected crash on rank {rank} at step {step} (NVLM_TEST_CRASH_RANK)")


class _MetricsLog:
    """RUN/metrics.jsonl (one line per log step, each figure with its unit) + RUN/tb/."""

    def __init__(self, run_dir: Path, *, enabled: bool, resume_step: int) -> None:
        self.enabled = enabled
        self.path = run_dir / METRICS
        self.writer = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            # Lines written after the checkpoint we resume from describe steps that will be
            # redone: drop them so the log has each step once.
            kept = [
                ln
                for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= resume_step
            ]
            from nvlm.outputs import write_text

            write_text(self.path, "".join(ln + "\n" for ln in kept))
        self.file = self.path.open("a")
        self.writer = tf.summary.create_file_writer(str(run_dir / TENSORBOARD))
        self.t0 = time.time()

    def write(self, step: int, figures: dict[str, float], units: dict[str, str]) -> None:
        if not self.enabled:
            return
        clean = {k: (v if math.isfinite(v) else None) for k, v in figures.items()}
        line = {
            "step": step,
            "wall_time_s": round(time.time() - self.t0, 3),
            **clean,
            "units": {k: units.get(k, "1") for k in figures},
        }
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()
        with self.writer.as_default(step=step):
            for k, v in figures.items():
                tf.summary.scalar(k, v)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.writer.flush()


def _mean_over_ranks(world, metrics: dict[str, float]) -> dict[str, float]:
    """Logged figures of the whole global batch, not of one rank's share of it.

    Each rank saw a different part of the batch; their means are averaged (equal shares), one
    small allreduce per log step, so that 2 ranks report the loss 1 process reports."""
    if world.size == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    values = world.allreduce_mean(
        tf.constant([metrics[k] for k in keys], tf.float32), name="nvlm_logged_metrics"
    )
    return {k: float(v) for k, v in zip(keys, np.asarray(values), strict=True)}
