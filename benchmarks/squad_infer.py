"""Benchmark: SQuAD inference (BERT-base, seq 384) of nvlm against keras-hub, on this CPU.

    python benchmarks/squad_infer.py                        # sweep + final, about 10 min
    python benchmarks/squad_infer.py --settings bf16 --batch1-steps 40 --batch8-steps 6  # quick
    python benchmarks/squad_infer.py --json out.json        # also write the figures

(With the `bench` extra installed: `pip install -e '.[bench]'`.)

Models, both BERT-base (L=12, H=768, A=12, I=3072, vocab 30528) with a span head, random
weights (speed does not depend on their values):
  * nvlm: `BertQuestionAnswerer(BertBackbone(...))`;
  * keras-hub: `keras_hub.models.BertBackbone` + `Dense(2)` on the sequence output, split into
    start and end logits.
Each runs as a `tf.function` (with `jit_compile` for the XLA settings) that returns the
logits to the host, on synthetic SQuAD-like features (fixed seed): [CLS] question [SEP]
context [SEP], 3/4..1 of 384 tokens, padded to 384.

Phases: (1) sweep: every model in every setting (fp32 / bf16, XLA off / on) at batch 1 and 8,
a short timing after a warm-up; (2) final: per batch size, each model in its best setting,
timed in alternating rounds.

Timing, statistics, busy-machine guard and peak are `nvlm benchmark`'s (`nvlm.bench.timing`,
`nvlm.train.peak`): per-batch wall times (`time_calls`) give the latency percentiles
(`Latencies`: numpy's linear interpolation between the closest ranks) and the throughput, which
here stays batch / median (p50) latency; `nvlm benchmark infer` divides every sequence by every
second (the --json figures carry that too, `all_sequences_per_s`). MFU divides by this
machine's dense matmul peak of the precision, measured by `nvlm.train.peak` (cached per
machine) and printed in the header.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

# A sibling module, found through sys.path[0] (this folder): `benchmarks.common` would not work,
# because pysbd (a dependency) installs a top-level package named `benchmarks`.
from common import (
    MFU_NOTE,
    VOCAB,
    Setting,
    add_guard_options,
    bert_config,
    interleaved,
    json_header,
    keras_hub_backbone,
    keras_hub_features,
    machine_lines,
    mfu,
    peak_line,
    release_models,
    set_policy,
    table,
    wait_quiet,
    warm_up,
)

from nvlm.bench.timing import PERCENTILES

TARGET_RATIO = 1.2  # nvlm / keras-hub throughput at batch 8
TARGET_TAIL = 1.5  # p99 / p50 latency at batch 1


def squad_features(n: int, batch: int, seq: int, seed: int) -> list[dict]:
    """`n` batches of SQuAD-shaped features (nvlm's input names), fixed seed."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = np.zeros((batch, seq), np.int32)
        mask = np.zeros_like(ids)
        segments = np.zeros_like(ids)
        for b in range(batch):
            length = int(rng.integers(3 * seq // 4, seq + 1))
            question = int(rng.integers(8, 64))
            ids[b, :length] = rng.integers(1000, VOCAB, length)
            ids[b, 0], ids[b, question + 1], ids[b, length - 1] = 101, 102, 102  # CLS, SEP
            mask[b, :length] = 1
            segments[b, question + 2 : length] = 1
        out.append(
            {
                "input_ids": tf.constant(ids),
                "input_mask": tf.constant(mask),
                "segment_ids": tf.constant(segments),
            }
        )
    return out


def nvlm_qa(cfg):
    from nvlm.models.bert import BertBackbone, BertQuestionAnswerer

    model = BertQuestionAnswerer(BertBackbone(**cfg.to_backbone_kwargs()))

    def forward(batch):
        out = model(batch, training=False)
        return out["start_logits"], out["end_logits"]

    return forward


def keras_hub_qa(cfg):
    import keras
    from keras import ops

    backbone = keras_hub_backbone(cfg)
    span_head = keras.layers.Dense(
        2,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=cfg.initializer_range),
        dtype=backbone.dtype_policy,
        name="span_head",
    )

    def forward(batch):
        hidden = backbone(keras_hub_features(batch), training=False)["sequence_output"]
        logits = ops.cast(span_head(hidden), "float32")
        return logits[:, :, 0], logits[:, :, 1]

    return forward


MODELS = {"nvlm": nvlm_qa, "keras-hub": keras_hub_qa}


def measure(
    pairs: list[tuple[str, Setting]], batch_size: int, args, rounds: int, per_round: int
) -> dict:
    """Build each (model, setting), warm it up, time all of them interleaved, release them."""
    import tensorflow as tf

    batches = squad_features(4, batch_size, args.seq_len, args.seed + batch_size)
    steps, warm = {}, {}
    for name, setting in pairs:
        set_policy(setting)
        forward = tf.function(MODELS[name](args.cfg), jit_compile=setting.xla)
        counter = iter(range(1 << 62))

        def step(forward=forward, counter=counter):
            start, end = forward(batches[next(counter) % len(batches)])
            return start.numpy(), end.numpy()

        steps[name] = step
        warm[name] = warm_up(step, args.warmup)
    timings = interleaved(steps, batch_size, rounds, per_round)
    steps.clear()
    release_models()
    return {name: (timings[name], warm[name]) for name, _ in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default="fp32,fp32+xla,bf16,bf16+xla")
    parser.add_argument("--models", default="nvlm,keras-hub")
    parser.add_argument("--size", default="base", help="BERT size (tiny: a smoke test)")
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed batches first (tracing, XLA compilation)"
    )
    parser.add_argument(
        "--sweep-steps",
        type=int,
        default=4,
        help="timed batches per setting and batch size in the sweep",
    )
    parser.add_argument(
        "--batch1-steps",
        type=int,
        default=300,
        help="timed batches of 1 per model in the final (p99 of 300 lies between the 3rd "
        "and 4th longest; of 100, next to the longest, one stall decides it)",
    )
    parser.add_argument(
        "--batch8-steps", type=int, default=12, help="timed batches of 8 per model in the final"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (final)")
    add_guard_options(parser, max_wait=600.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from nvlm.models.bert import flops_per_token

    settings = [Setting.parse(s) for s in args.settings.split(",")]
    names = args.models.split(",")
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    cfg = args.cfg = bert_config(args.size)
    seq = args.seq_len
    flops = flops_per_token(cfg, seq, masked_fraction=0.0, training=False) * seq

    print(f"SQuAD inference, BERT-{args.size} + span head, seq {seq}, batch 1 and 8")
    print(*machine_lines(), sep="\n")
    print(f"FLOPs per sequence (forward): {flops / 1e9:.1f} GFLOP")
    wait_quiet(args)
    print(peak_line(s.precision for s in settings), flush=True)

    results: dict = {"sweep": [], "final": {}}
    rows = []
    for batch_size in (1, 8):
        for setting in settings:
            # Both models of a setting batch by batch in turn (the load drifts over minutes).
            print(f"  sweep: {', '.join(names)} in {setting}, batch {batch_size} ...", flush=True)
            pairs = [(name, setting) for name in names]
            for name, (timing, warm_s) in measure(
                pairs, batch_size, args, args.sweep_steps, 1
            ).items():
                r = {
                    "model": name,
                    "setting": str(setting),
                    "batch": batch_size,
                    "sequences_per_s": timing.sequences_per_s,
                    "p50_ms": timing.percentile_ms(50),
                    "warmup_s": warm_s,
                    "others_cpu": timing.others_share,
                }
                results["sweep"].append(r)
                row = [name, setting, batch_size, f"{r['sequences_per_s']:.2f}",
                       f"{r['p50_ms']:.0f}", f"{warm_s:.0f}", timing.others_cpu]  # fmt: skip
                rows.append(row)
                print("  " + " ".join(map(str, row)), flush=True)
    print(f"\nSweep (median of {args.sweep_steps} batches after {args.warmup} warm-up batches)")
    print(table(["model", "setting", "batch", "sequences/s", "p50 ms", "warm-up s",
                 "others' CPU"], rows))  # fmt: skip

    for batch_size, steps in ((1, args.batch1_steps), (8, args.batch8_steps)):
        candidates = [r for r in results["sweep"] if r["batch"] == batch_size]
        pairs = [
            (
                name,
                Setting.parse(
                    max(
                        (r for r in candidates if r["model"] == name),
                        key=lambda r: r["sequences_per_s"],
                    )["setting"]
                ),
            )
            for name in names
        ]
        per_round = max(1, steps // args.rounds)
        print(
            f"\nFinal, batch {batch_size}: best setting per model, {args.rounds} alternating "
            f"rounds of {per_round} batches",
            flush=True,
        )
        wait_quiet(args, 120.0)
        measured = measure(pairs, batch_size, args, args.rounds, per_round)
        rows = []
        final = results["final"][str(batch_size)] = {}
        for name, setting in pairs:
            timing = measured[name][0]
            r = {
                "setting": str(setting),
                "sequences_per_s": timing.sequences_per_s,
                "all_sequences_per_s": timing.all_sequences_per_s,
                "mfu": mfu(timing.sequences_per_s, flops, setting.precision),
                **{f"p{q}_ms": timing.percentile_ms(q) for q in PERCENTILES},
                "max_ms": timing.latencies.max_ms,
                "std_ms": timing.latencies.std_ms,
                "batches": len(timing.seconds),
                "others_cpu": timing.others_share,
            }
            final[name] = r
            rows.append(
                [
                    name,
                    setting,
                    f"{r['sequences_per_s']:.2f}",
                    f"{100 * r['mfu']:.1f}%",
                    *(f"{r[f'p{q}_ms']:.0f}" for q in PERCENTILES),
                    f"{r['max_ms']:.0f}",
                    f"{r['p99_ms'] / r['p50_ms']:.2f}",
                    r["batches"],
                    timing.others_cpu,
                ]
            )
        print(
            table(
                [
                    "model",
                    "best setting",
                    "sequences/s",
                    "MFU",
                    *(f"p{q} ms" for q in PERCENTILES),
                    "max ms",
                    "p99/p50",
                    "batches",
                    "others' CPU",
                ],
                rows,
            )
        )
        if "nvlm" in final and "keras-hub" in final:
            ratio = final["nvlm"]["sequences_per_s"] / final["keras-hub"]["sequences_per_s"]
            final["ratio"] = ratio
            line = f"nvlm / keras-hub throughput at batch {batch_size}: {ratio:.2f}x"
            if batch_size == 8:
                line += f" ({'meets' if ratio >= TARGET_RATIO else 'misses'} the "
                line += f"{TARGET_RATIO}x target)"
            print(line)
        if batch_size == 1 and "nvlm" in final:
            tail = final["nvlm"]["p99_ms"] / final["nvlm"]["p50_ms"]
            print(
                f"nvlm batch-1 p99 / p50 latency: {tail:.2f} "
                f"({'meets' if tail <= TARGET_TAIL else 'misses'} the {TARGET_TAIL} target)"
            )

    print(f"\n{MFU_NOTE}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**json_header(), **results}, f, indent=2)


if __name__ == "__main__":
    main()
