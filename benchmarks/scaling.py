"""Data-parallel scaling of nvlm's BERT pretraining step on this machine: 1 and 2 processes.

    python benchmarks/scaling.py                                   # tiny and small, 1 and 2 processes
    python benchmarks/scaling.py --sizes small --processes 1 2 --steps 30 --json scaling.json

For each model size and process count it starts the processes the way `nvlm pretrain --gpus N`
does (mpirun, or horovodrun with --launcher horovodrun; the same command builder, so the same
pinning: each of N processes on this machine gets cores // N TensorFlow threads) and runs the
training step of nvlm's `Trainer`: forward + backward (one micro-batch per process), then the
apply function (ONE grouped allreduce of all gradients, global-norm clip, LAMB). Per process the
micro-batch stays the same (weak scaling: the global batch grows with the processes). Figures:

- step time (ms): median (p50) wall time of a whole optimizer step, on rank 0 (ranks run in lock
  step), timed by `nvlm.bench.timing.time_calls` and summarised by its `Latencies`;
- throughput (sequences/s): global batch / step time, aggregate over all processes, and per process;
- allreduce (ms/step): median time of the same grouped allreduce over tensors shaped like the
  model's gradients, measured alone right after the steps (no compute to overlap with);
- communication fraction: allreduce / step time;
- others' CPU: the share of the CPUs other processes used while the run went (the processes
  of the run are children of this script, so their CPU time counts as its own);
- vs 1 process: aggregate throughput / the 1-process throughput. On a multi-GPU node the ideal
  is N (each process brings its own GPU); on this 2-core machine the processes SHARE the cores
  that 1 process uses with 2 threads, so the ideal is 1.0 and the gap is the cost of going
  data-parallel (the allreduce, one thread per process instead of two).

Throughput stays global batch / median step time (`nvlm benchmark train --gpus 1,2` divides every
sequence by every second; the --json results carry that too, `all_sequences_per_s`). The run
first waits for the machine to be quiet, as `nvlm benchmark` does (--max-busy, --max-wait).

Synthetic batches (random token ids, seq 128, 20 masked positions, fixed seed): data loading is
not measured. Run from the repository root as a file (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

# A sibling module, found through sys.path[0] (this folder): see bert_train.py.
from common import (
    VOCAB,
    add_guard_options,
    json_header,
    machine_lines,
    others_during,
    percent,
    table,
    wait_quiet,
)

from nvlm.bench.timing import Latencies, time_calls

RESULT = "SCALING-RESULT "


# ------------------------------------------------------------------------------ the worker
def synthetic_batch(rng: np.random.Generator, batch: int, seq: int, predictions: int) -> dict:
    positions = np.sort(
        np.stack([rng.choice(np.arange(1, seq), predictions, replace=False) for _ in range(batch)]),
        axis=1,
    )
    return {
        "input_ids": rng.integers(5, VOCAB, (batch, seq)),
        "input_mask": np.ones((batch, seq)),
        "segment_ids": (np.arange(seq)[None, :] >= seq // 2).repeat(batch, 0),
        "masked_lm_positions": positions,
        "masked_lm_ids": rng.integers(5, VOCAB, (batch, predictions)),
        "next_sentence_labels": rng.integers(0, 2, (batch,)),
    }


def worker(args: argparse.Namespace) -> None:
    import tensorflow as tf

    from nvlm import dist
    from nvlm import resolve as resolve_mod
    from nvlm.plugins.bert.plugin import BertPlugin
    from nvlm.train.precision import set_precision
    from nvlm.train.trainer import Trainer, TrainSpec

    world = dist.world()  # Horovod up and this process pinned, before TensorFlow starts
    cfg = resolve_mod.resolve("bert", "pretrain_phase1", preset="cpu-fp32", sets=[
        f"model.size={args.size}", f"model.vocab_size={VOCAB}", f"data.seq_len={args.seq_len}",
        "data.max_predictions=20", f"train.batch_size={args.batch}", "train.accumulation=1",
        f"train.precision={args.precision}", "train.xla=false",
    ], flags={"train.gpus": world.size}).config  # fmt: skip
    set_precision(cfg.train.precision)
    plugin = BertPlugin()
    model = plugin.build(cfg, "pretrain")
    rng = np.random.default_rng(1234 + world.rank)
    batches = [
        {k: tf.constant(v.astype(np.int32)) for k, v in synthetic_batch(
            rng, args.batch, args.seq_len, 20).items()}
        for _ in range(4)
    ]  # fmt: skip
    spec = TrainSpec(
        model=model,
        loss_fn=plugin.loss_fn(cfg, "pretrain"),
        batches=None,
        tokens_per_example=args.seq_len,
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, cfg.train, tmp, world=world, show_progress=False)
    world.broadcast(trainer.state.all_variables())
    no_stop = tf.constant(0.0)

    calls = iter(range(1 << 62))

    def step() -> None:
        grads, _ = trainer._compute(batches[next(calls) % len(batches)])
        lr, _, _ = trainer._apply(grads, no_stop)
        float(lr)  # wait for the step to finish

    time_calls(step, args.warmup)
    step_s = Latencies(tuple(time_calls(step, args.steps)))

    reduce_s = None
    if world.size > 1:
        grads = [tf.ones(v.shape, tf.float32) for v in trainer.trainable]
        allreduce = tf.function(lambda gs: world.allreduce_grads(gs))

        def reduce() -> None:
            float(allreduce(grads)[0][(0,) * grads[0].shape.rank])  # on the host: done

        time_calls(reduce, 3)
        reduce_s = Latencies(tuple(time_calls(reduce, args.steps)))

    if world.is_root:
        params = sum(int(np.prod(v.shape)) for v in trainer.trainable)
        result = {
            "size": args.size, "processes": world.size, "controller": world.controller,
            "device": world.device, "micro_batch": args.batch,
            "global_batch": args.batch * world.size, "params": params,
            "gradient_mb": params * 4 / 2**20,
            "step_ms": step_s.percentile_ms(50), "step_p90_ms": step_s.percentile_ms(90),
            "step_max_ms": step_s.max_ms,
            "all_sequences_per_s": step_s.per_second(args.batch * world.size),
            "allreduce_ms": reduce_s.percentile_ms(50) if reduce_s else 0.0,
        }  # fmt: skip
        print(RESULT + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------ the driver
def run_one(args: argparse.Namespace, size: str, processes: int) -> dict:
    from nvlm.launch.command import LaunchPlan, build_command, find_launcher

    program = [sys.executable, os.path.abspath(__file__), "--worker", "--size", size,
               "--batch", str(args.batch), "--seq-len", str(args.seq_len),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--precision", args.precision]  # fmt: skip
    if processes == 1:
        argv, env = program, {}
    else:
        cmd = build_command(LaunchPlan(
            launcher=args.launcher, processes=processes, program=tuple(program),
            env=dict(os.environ), as_root=os.geteuid() == 0, cpu_workers=True,
            executable=find_launcher(args.launcher)))  # fmt: skip
        argv, env = cmd.argv, cmd.env
    print(f"  {size}, {processes} process(es): {' '.join(argv[:8])} ...", flush=True)
    # subprocess.run waits for the launcher, which waits for its ranks: their CPU time is then
    # this process's (children's), and what remains is other people's.
    proc, others = others_during(
        lambda: subprocess.run(
            argv,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
            capture_output=True,
            text=True,
            timeout=1800,
        )
    )
    match = re.search(re.escape(RESULT) + r"(\{.*\})", proc.stdout)
    if proc.returncode != 0 or not match:
        sys.exit(f"{size} x {processes} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(match[1])
    result["others_cpu"] = others
    return result


def report(results: list[dict]) -> str:
    base = {r["size"]: r for r in results if r["processes"] == 1}
    rows = []
    for r in results:
        seq_s = r["global_batch"] / (r["step_ms"] / 1e3)
        one = base.get(r["size"])
        ratio = seq_s / (one["global_batch"] / (one["step_ms"] / 1e3)) if one else 0.0
        rows.append([
            f"BERT-{r['size']}", r["processes"], r["micro_batch"], r["global_batch"],
            f"{r['gradient_mb']:.1f}", f"{r['step_ms']:.1f}", f"{seq_s:.1f}",
            f"{seq_s / r['processes']:.1f}",
            f"{r['allreduce_ms']:.1f}" if r["processes"] > 1 else "-",
            f"{r['allreduce_ms'] / r['step_ms']:.1%}" if r["processes"] > 1 else "-",
            f"{ratio:.2f}x", percent(r["others_cpu"]),
        ])  # fmt: skip
    header = [
        "model",
        "processes",
        "micro-batch/process",
        "global batch",
        "gradients (MB)",
        "step (ms)",
        "throughput (seq/s, all)",
        "per process (seq/s)",
        "allreduce (ms/step)",
        "communication",
        "vs 1 process",
        "others' CPU",
    ]
    return table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", type=int, default=16, help="micro-batch per process")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (tracing)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--launcher", default="mpirun", choices=["mpirun", "horovodrun"])
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="runs of each configuration, alternating; the fastest is kept "
        "(other people's jobs on a shared machine only ever slow a run down)",
    )
    add_guard_options(parser, max_wait=300.0)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    for line in machine_lines():
        print(line)
    wait_quiet(args)
    best: dict[tuple[str, int], dict] = {}
    for _ in range(args.rounds):
        for size in args.sizes:
            for p in args.processes:
                r = run_one(args, size, p)
                if (size, p) not in best or r["step_ms"] < best[size, p]["step_ms"]:
                    best[size, p] = r
    results = [best[size, p] for size in args.sizes for p in args.processes]
    print(
        f"\nBERT pretraining step, seq {args.seq_len}, {args.precision}, XLA off, "
        f"{args.launcher} for >1 process, median of {args.steps} steps, fastest of "
        f"{args.rounds} runs:\n"
    )
    print(report(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**json_header(), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
