"""Benchmark: nvlm's BERT-base pretraining step against keras-hub's BERT, on this CPU.

    python benchmarks/bert_train.py                         # sweep + final, about 15 min
    python benchmarks/bert_train.py --settings bf16 --final-steps 4 --no-inference   # quick
    python benchmarks/bert_train.py --json out.json         # also write the figures

(With the `bench` extra installed: `pip install -e '.[bench]'`.)

Both models are BERT-base (L=12, H=768, A=12, I=3072, vocab 30528, dropout 0.1) with the two
pretraining heads, trained on the same synthetic batches (batch 8, seq 128, 20 masked positions,
fixed seed) through the SAME step: nvlm's `Trainer` compute function (forward + backward, XLA
when the setting says so) and apply function (global-norm clip, LAMB), with the same loss
(`pretraining_losses`). The only difference is the model:
  * nvlm: `BertPretrainer(BertBackbone(...))`;
  * keras-hub: `keras_hub.models.BertBackbone` + `keras_hub.layers.MaskedLMHead` tied to the
    token embedding (as `keras_hub.models.BertMaskedLM` builds it) + a Dense(2) NSP head on the
    pooled output.

Phases: (1) sweep: every model in every setting (fp32 / bf16, XLA off / on), a short timing
after a warm-up that absorbs tracing and compilation; (2) final: each model in its best setting
of the sweep, timed in alternating rounds (a load change hits both alike). Then nvlm's forward
pass (the backbone, inference) at seq 128 and 384.

Timing, statistics, busy-machine guard and peak are `nvlm benchmark`'s (`nvlm.bench.timing`,
`nvlm.train.peak`). Throughput here is the median step time's: batch / p50(step seconds), which
one stall of someone else's job in a handful of steps does not move; `nvlm benchmark` divides
every sequence by every second (the --json figures carry that too, `all_sequences_per_s`).
MFU = sequences/s x FLOPs per sequence (`nvlm.models.bert.flops_per_token`, the same count for
both models) / this machine's dense matmul peak of the precision, measured by
`nvlm.train.peak` (cached per machine) and printed in the header.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass

import numpy as np

# A sibling module, found through sys.path[0] (this folder): `benchmarks.common` would not work,
# because pysbd (a dependency) installs a top-level package named `benchmarks`.
from common import (
    MFU_NOTE,
    VOCAB,
    Setting,
    Timing,
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

from nvlm.bench.timing import Latencies

TARGET_RATIO = 1.2


# ------------------------------------------------------------------------------------ data
def synthetic_batches(n: int, batch: int, seq: int, predictions: int, seed: int) -> list[dict]:
    """`n` pretraining batches with the shard layout (nvlm's input names), fixed seed.

    Real-looking structure, because it costs nothing: lengths 3/4..1 of `seq` with padding,
    sentence B after a random split, `predictions` distinct masked positions among the tokens.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = np.zeros((batch, seq), np.int32)
        mask = np.zeros_like(ids)
        segments = np.zeros_like(ids)
        positions = np.zeros((batch, predictions), np.int32)
        for b in range(batch):
            length = int(rng.integers(3 * seq // 4, seq + 1))
            ids[b, :length] = rng.integers(1000, VOCAB, length)
            mask[b, :length] = 1
            segments[b, int(rng.integers(length // 4, 3 * length // 4)) : length] = 1
            positions[b] = np.sort(rng.choice(np.arange(1, length), predictions, replace=False))
        arrays = {
            "input_ids": ids,
            "input_mask": mask,
            "segment_ids": segments,
            "masked_lm_positions": positions,
            "masked_lm_ids": rng.integers(1000, VOCAB, (batch, predictions)).astype(np.int32),
            "next_sentence_labels": rng.integers(0, 2, (batch, 1)).astype(np.int32),
        }
        out.append({k: tf.constant(v) for k, v in arrays.items()})
    return out


# ---------------------------------------------------------------------------------- models
def nvlm_pretrainer(cfg):
    """nvlm's model and loss function (the `bert` plugin's `pretrain` loss)."""
    from nvlm.models.bert import BertBackbone, BertPretrainer, pretraining_losses

    model = BertPretrainer(BertBackbone(**cfg.to_backbone_kwargs()))

    def loss_fn(model, batch, training):
        out = pretraining_losses(model(batch, training=training), batch)
        return out["loss"], {"mlm_loss": out["mlm_loss"], "nsp_loss": out["nsp_loss"]}

    return model, loss_fn


def keras_hub_pretrainer(cfg):
    """keras-hub's BERT of the same shape with the same two heads, and the same loss."""
    import keras
    import keras_hub

    from nvlm.models.bert import pretraining_losses

    backbone = keras_hub_backbone(cfg)
    init = keras.initializers.TruncatedNormal(stddev=cfg.initializer_range)
    # As keras_hub.models.BertMaskedLM builds its head (exact GELU, decoder tied to the
    # token embedding); keras-hub has no NSP head, so it gets nvlm's: Dense(2) on pooled.
    mlm_head = keras_hub.layers.MaskedLMHead(
        token_embedding=backbone.token_embedding,
        intermediate_activation="gelu",
        kernel_initializer=init,
        dtype=backbone.dtype_policy,
        name="mlm_head",
    )
    nsp_head = keras.layers.Dense(
        2, kernel_initializer=init, dtype=backbone.dtype_policy, name="nsp_head"
    )
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in ("token_ids", "segment_ids", "padding_mask", "mask_positions")
    }
    encoded = backbone({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")})
    outputs = {
        "mlm_logits": mlm_head(encoded["sequence_output"], inputs["mask_positions"]),
        "nsp_logits": nsp_head(encoded["pooled_output"]),
    }
    model = keras.Model(inputs, outputs, name="keras_hub_bert_pretrainer")

    def loss_fn(model, batch, training):
        features = {**keras_hub_features(batch), "mask_positions": batch["masked_lm_positions"]}
        out = pretraining_losses(model(features, training=training), batch)
        return out["loss"], {"mlm_loss": out["mlm_loss"], "nsp_loss": out["nsp_loss"]}

    return model, loss_fn


MODELS = {"nvlm": nvlm_pretrainer, "keras-hub": keras_hub_pretrainer}


# ------------------------------------------------------------------------------ train step
class TrainerStep:
    """One full optimizer step of nvlm's Trainer (compute, then clip + LAMB), as a callable.

    `Trainer.fit` times whole runs and writes checkpoints; the benchmark needs single steps,
    so it calls the trainer's two graph functions the way `fit` does, in the same order, and
    fetches their results to the host (as `fit` does each step) so that a step is complete
    when the call returns. The step as a whole is timed by `timing.time_calls` (`Timing`); a
    CPU tf.function returns when its work is done, so the two halves are also clocked apart
    inside the call (`parts`: (compute s, apply s) of every call).
    """

    def __init__(self, model, loss_fn, setting: Setting, batches: list[dict], run_dir: str):
        import dataclasses

        from nvlm.config import TrainConfig
        from nvlm.train.trainer import Trainer, TrainSpec

        cfg = dataclasses.replace(
            TrainConfig(),
            steps=100_000,  # only shapes the learning-rate schedule
            batch_size=batches[0]["input_ids"].shape[0],
            optimizer="lamb",
            lr=1e-4,
            warmup_steps=1000,
            precision=setting.precision,
            xla=setting.xla,
        )
        spec = TrainSpec(
            model=model,
            loss_fn=loss_fn,
            batches=lambda start: iter(()),
            tokens_per_example=batches[0]["input_ids"].shape[1],
        )
        self.trainer = Trainer(spec, cfg, run_dir, show_progress=False)
        self.batches = batches
        self.parts: list[tuple[float, float]] = []

    def __call__(self) -> tuple[float, float, float]:
        batch = self.batches[len(self.parts) % len(self.batches)]
        t0 = time.perf_counter()
        grads, metrics = self.trainer._compute(batch)
        t1 = time.perf_counter()
        lr, grad_norm, _ = self.trainer._apply(grads)
        result = float(metrics["loss"]), float(grad_norm), float(lr)
        self.parts.append((t1 - t0, time.perf_counter() - t1))
        return result

    def split_ms(self, last: int) -> tuple[float, float]:
        """Median (p50) compute and apply milliseconds over the `last` calls."""
        timed = self.parts[-last:]
        return tuple(Latencies(tuple(p[i] for p in timed)).percentile_ms(50) for i in (0, 1))


@dataclass
class Measured:
    setting: Setting
    timing: Timing
    warmup_s: float
    compute_ms: float
    apply_ms: float


def measure_training(
    pairs: list[tuple[str, Setting]], batches, args, rounds: int, per_round: int
) -> dict[str, Measured]:
    """Build each (model, setting), warm it up, time them all interleaved, release them.

    A model takes the global dtype policy when it is built (and traced, in the warm-up), so
    models in different settings can live side by side and be timed in alternating rounds.
    """
    steps, warm = {}, {}
    with tempfile.TemporaryDirectory() as run_dir:
        for name, setting in pairs:
            set_policy(setting)
            model, loss_fn = MODELS[name](args.cfg)
            steps[name] = TrainerStep(model, loss_fn, setting, batches, run_dir)
            warm[name] = warm_up(steps[name], args.warmup)
        timings = interleaved(steps, args.batch_size, rounds, per_round)
    out = {
        name: Measured(
            setting, timings[name], warm[name], *steps[name].split_ms(len(timings[name].seconds))
        )
        for name, setting in pairs
    }
    steps.clear()
    release_models()
    return out


# --------------------------------------------------------------------------------- inference
def measure_inference(setting: Setting, seq: int, args) -> Timing:
    """nvlm's backbone forward pass (training=False) in `setting`: sequences/s."""
    import tensorflow as tf

    from nvlm.models.bert import BertBackbone

    set_policy(setting)
    backbone = BertBackbone(**args.cfg.to_backbone_kwargs())
    batches = synthetic_batches(2, args.batch_size, seq, args.predictions, args.seed + seq)
    inputs = [{k: b[k] for k in ("input_ids", "input_mask", "segment_ids")} for b in batches]

    @tf.function(jit_compile=setting.xla)
    def forward(x):
        return backbone(x, training=False)["sequence_output"]

    state = {"i": 0}

    def step():
        state["i"] += 1
        return forward(inputs[state["i"] % 2]).numpy()

    warm_up(step, args.warmup)
    timing = interleaved({"nvlm": step}, args.batch_size, 1, args.infer_steps)["nvlm"]
    release_models()
    return timing


# ------------------------------------------------------------------------------------ report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settings",
        default="fp32,fp32+xla,bf16,bf16+xla",
        help="comma-separated settings to sweep (default: all four)",
    )
    parser.add_argument("--models", default="nvlm,keras-hub")
    parser.add_argument("--size", default="base", help="BERT size (tiny: a smoke test)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps first (tracing, XLA compilation)"
    )
    parser.add_argument("--sweep-steps", type=int, default=3, help="timed steps per setting")
    parser.add_argument("--final-rounds", type=int, default=2)
    parser.add_argument(
        "--final-steps", type=int, default=5, help="timed steps per model per final round"
    )
    parser.add_argument(
        "--infer-steps", type=int, default=4, help="timed forward batches per setting and seq len"
    )
    parser.add_argument("--no-inference", action="store_true")
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
    train_flops = flops_per_token(cfg, seq, masked_fraction=args.predictions / seq) * seq

    print(
        f"BERT-{args.size} pretraining step (MLM + NSP, LAMB, global-norm clip 1.0), "
        f"batch {args.batch_size} x seq {seq}, {args.predictions} masked positions"
    )
    print(*machine_lines(), sep="\n")
    print(f"FLOPs per sequence (training): {train_flops / 1e9:.1f} GFLOP")
    batches = synthetic_batches(4, args.batch_size, seq, args.predictions, args.seed)
    wait_quiet(args)
    print(peak_line(s.precision for s in settings), flush=True)

    # --- sweep
    results: dict = {"sweep": [], "final": {}, "inference": []}
    header = ["model", "setting", "sequences/s", "MFU", "step ms", "compute ms", "apply ms"]

    def record(name: str, m: Measured) -> list:
        seq_s = m.timing.sequences_per_s
        figures = {
            "model": name,
            "setting": str(m.setting),
            "sequences_per_s": seq_s,
            "all_sequences_per_s": m.timing.all_sequences_per_s,
            "mfu": mfu(seq_s, train_flops, m.setting.precision),
            "step_ms": 1e3 * m.timing.median_s,
            "compute_ms": m.compute_ms,
            "apply_ms": m.apply_ms,
            "steps": len(m.timing.seconds),
            "warmup_s": m.warmup_s,
            "others_cpu": m.timing.others_share,
        }
        row = [
            name,
            m.setting,
            f"{seq_s:.3f}",
            f"{100 * figures['mfu']:.1f}%",
            f"{figures['step_ms']:.0f}",
            f"{m.compute_ms:.0f}",
            f"{m.apply_ms:.0f}",
        ]
        return figures, row

    rows = []
    for setting in settings:
        # Both models of a setting step by step in turn: on a shared machine the load drifts
        # over minutes, and the per-setting comparison should not depend on it.
        print(f"  sweep: {', '.join(names)} in {setting} ...", flush=True)
        pairs = [(name, setting) for name in names]
        for name, m in measure_training(pairs, batches, args, args.sweep_steps, 1).items():
            figures, row = record(name, m)
            results["sweep"].append(figures)
            rows.append([*row, f"{m.warmup_s:.0f}", m.timing.others_cpu])
            print("  " + " ".join(map(str, row)), flush=True)
    print(
        f"\nSweep (median of {args.sweep_steps} steps after {args.warmup} warm-up steps, "
        "models alternating step by step)"
    )
    print(table([*header, "warm-up s", "others' CPU"], rows))

    # --- final: each model in its best setting, interleaved
    best = {
        name: max(
            (r for r in results["sweep"] if r["model"] == name), key=lambda r: r["sequences_per_s"]
        )["setting"]
        for name in names
    }
    print(
        f"\nFinal: best setting per model, {args.final_rounds} alternating rounds of "
        f"{args.final_steps} steps each",
        flush=True,
    )
    wait_quiet(args, 120.0)
    pairs = [(name, Setting.parse(best[name])) for name in names]
    rows = []
    for name, m in measure_training(
        pairs, batches, args, args.final_rounds, args.final_steps
    ).items():
        figures, row = record(name, m)
        results["final"][name] = figures
        rows.append([*row, figures["steps"], m.timing.others_cpu])
    print(table([*header, "steps", "others' CPU"], rows))
    if {"nvlm", "keras-hub"} <= set(results["final"]):
        ratio = (
            results["final"]["nvlm"]["sequences_per_s"]
            / results["final"]["keras-hub"]["sequences_per_s"]
        )
        results["ratio"] = ratio
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        print(
            f"nvlm / keras-hub training throughput: {ratio:.2f}x "
            f"({verdict} the {TARGET_RATIO}x target)"
        )

    # --- inference
    if not args.no_inference and "nvlm" in names:
        print(
            f"\nnvlm inference (BertBackbone forward, training=False), batch "
            f"{args.batch_size}, median of {args.infer_steps} batches",
            flush=True,
        )
        rows = []
        for infer_seq in (128, 384):
            flops = flops_per_token(cfg, infer_seq, masked_fraction=0.0, training=False) * infer_seq
            for setting in settings:
                timing = measure_inference(setting, infer_seq, args)
                seq_s = timing.sequences_per_s
                figures = {
                    "seq_len": infer_seq,
                    "setting": str(setting),
                    "sequences_per_s": seq_s,
                    "all_sequences_per_s": timing.all_sequences_per_s,
                    "mfu": mfu(seq_s, flops, setting.precision),
                    "batch_ms": timing.median_s * 1e3,
                    "others_cpu": timing.others_share,
                }
                results["inference"].append(figures)
                rows.append(
                    [
                        infer_seq,
                        setting,
                        f"{seq_s:.2f}",
                        f"{100 * figures['mfu']:.1f}%",
                        f"{figures['batch_ms']:.0f}",
                        timing.others_cpu,
                    ]
                )
        print(table(["seq", "setting", "sequences/s", "MFU", "batch ms", "others' CPU"], rows))

    print(f"\n{MFU_NOTE}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**json_header(), **results}, f, indent=2)


if __name__ == "__main__":
    main()
