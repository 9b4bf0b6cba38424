"""Benchmark: ELECTRA pretraining steps (small, base) and SQuAD inference on this CPU.

    python benchmarks/electra_train.py                                  # full, ~30 min
    python benchmarks/electra_train.py --sizes small --settings bf16 --final-steps 3   # quick
    python benchmarks/electra_train.py --json out.json                  # also write figures

What is measured, for each size (ELECTRA-Small: 12 x 256, embedding 128, generator 1/4;
ELECTRA-Base: 12 x 768, generator 1/3; vocab 30528, seq 128, batch 8, 20 selected positions):

  1. sweep: one full pretraining step of nvlm's Trainer (dynamic masking, generator, Gumbel
     sampling, discriminator, both losses, forward + backward, global-norm clip, LAMB) in every
     setting (fp32 / bf16, XLA off / on), after a warm-up that absorbs tracing and compilation;
  2. final: the best setting of the sweep timed in alternating rounds against the pretraining
     step of a BERT with the discriminator's shape (MLM + NSP heads, `nvlm.models.bert`), so
     that a load change hits both alike. The ratio of their step times is compared with the
     ratio of their FLOPs: ELECTRA's generator is the extra work, and anything beyond it is
     overhead to explain;
  3. SQuAD inference: the fine-tuning model's forward pass (discriminator + joint beam-search
     head, beam 4; and the simple start/end head) at seq 384, batch 8, in bf16 and fp32.

Timing, statistics, busy-machine guard and peak are `nvlm benchmark`'s (`nvlm.bench.timing`,
`nvlm.train.peak`). Throughput is batch / median (p50) step time (`nvlm benchmark` divides every
sequence by every second; --json carries that too, `all_sequences_per_s`); MFU = sequences/s x
matmul FLOPs per sequence (`nvlm.models.electra.flops_per_token`) / this machine's dense matmul
peak of the precision, measured by `nvlm.train.peak` (cached per machine) and printed in the
header. Every figure carries the share of the CPUs other processes used while it was
measured: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from bert_train import TrainerStep, nvlm_pretrainer, synthetic_batches
from common import (
    VOCAB,
    Setting,
    add_guard_options,
    interleaved,
    json_header,
    machine_lines,
    mfu,
    peak_line,
    release_models,
    set_policy,
    table,
    wait_quiet,
    warm_up,
)


def electra_config(size: str, seq: int, predictions: int):
    from nvlm import resolve as resolve_mod

    flags = {
        "model.size": size,
        "model.vocab_size": VOCAB,
        "data.seq_len": seq,
        "data.max_predictions": predictions,
    }
    return resolve_mod.resolve("electra", "pretrain_phase1", flags=flags).config


def electra_pretrainer(cfg):
    from nvlm.plugins.electra.plugin import ElectraPlugin

    plugin = ElectraPlugin()
    return plugin.build(cfg, "pretrain"), plugin.loss_fn(cfg, "pretrain")


def bert_twin(cfg):
    """The BertConfig of a BERT with the discriminator's shape (embedding = hidden)."""
    from nvlm.models.bert.config import BertConfig

    m = cfg.model
    return BertConfig(size="custom", vocab_size=m.vocab_size, hidden_size=m.hidden_size,
                      num_layers=m.num_layers, num_heads=m.num_heads,
                      intermediate_size=m.intermediate_size)  # fmt: skip


def flops_per_sequence(cfg, seq: int, predictions: int) -> tuple[float, float]:
    """(ELECTRA, BERT twin) training FLOPs per sequence."""
    from nvlm.models.bert import flops_per_token as bert_flops
    from nvlm.models.electra import flops_per_token as electra_flops

    fraction = predictions / seq
    return (
        electra_flops(cfg.model, seq, masked_fraction=fraction) * seq,
        bert_flops(bert_twin(cfg), seq, masked_fraction=fraction) * seq,
    )


def build_step(kind: str, cfg, setting: Setting, batches, run_dir: str) -> TrainerStep:
    set_policy(setting)
    if kind == "electra":
        model, loss_fn = electra_pretrainer(cfg)
    else:
        model, loss_fn = nvlm_pretrainer(bert_twin(cfg))
    return TrainerStep(model, loss_fn, setting, batches, run_dir)


def measure_breakdown(cfg, setting: Setting, batches, args) -> dict:
    """Forward + backward of each part of a step alone (ms), to see where ELECTRA's time goes
    beyond its FLOPs: the discriminator with its head, the generator with its masked-LM head
    on the selected positions, and the corruption ops (positions, [MASK], Gumbel sampling,
    scatter) that have no weights."""
    import tensorflow as tf

    from nvlm.models.electra.replaced_tokens import (
        mask_inputs,
        sample_tokens,
        scatter_tokens,
        select_positions,
    )

    set_policy(setting)
    model, _ = electra_pretrainer(cfg)
    m, data = cfg.model, cfg.data
    inputs = [{k: b[k] for k in ("input_ids", "input_mask", "segment_ids")} for b in batches]
    positions = tf.constant(batches[0]["masked_lm_positions"])

    def grad_of(fn, variables):
        @tf.function(jit_compile=setting.xla)
        def step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.cast(fn(x), tf.float32))
            grads = tape.gradient(loss, variables)
            return [tf.convert_to_tensor(g) for g in grads if g is not None]

        return step

    disc_vars = (
        model.discriminator.trainable_variables + model.discriminator_head.trainable_variables
    )
    gen_vars = model.generator.trainable_variables + model.generator_head.trainable_variables
    parts = {
        "discriminator + head": grad_of(
            lambda x: model.discriminator_head(
                model.discriminator(x, training=True)["sequence_output"]
            ),
            disc_vars,
        ),
        "generator + MLM head": grad_of(
            lambda x: model.generator_head(
                model.generator(x, training=True)["sequence_output"], positions
            ),
            gen_vars,
        ),
    }

    @tf.function(jit_compile=setting.xla)
    def corruption(x):
        seed = model.seed_generator
        pos, w = select_positions(
            x["input_ids"],
            x["input_mask"],
            max_predictions=data.max_predictions,
            mask_prob=data.masked_lm_prob,
            excluded_ids=(101, 102),
            seed=seed,
        )
        masked = mask_inputs(x["input_ids"], pos, w, mask_token_id=m.mask_token_id, seed=seed)
        logits = tf.zeros((tf.shape(pos)[0], data.max_predictions, m.vocab_size))
        sampled = sample_tokens(logits, pos, temperature=1.0, disallow_correct=False, seed=seed)
        return scatter_tokens(masked, pos, w, sampled)

    parts["corruption (no weights)"] = corruption
    out = {}
    for name, fn in parts.items():
        state = {"i": 0}

        def step(fn=fn, state=state):
            state["i"] += 1
            return [t.numpy() for t in tf.nest.flatten(fn(inputs[state["i"] % 2]))]

        warm_up(step, args.warmup)
        timing = interleaved({name: step}, args.batch_size, 1, args.sweep_steps)[name]
        out[name] = {"ms": 1e3 * timing.median_s, "others_cpu": timing.others_share,
                     "others": timing.others_cpu}  # fmt: skip
    parts.clear()
    release_models()
    return out


def measure_squad(size: str, setting: Setting, head: str, args) -> dict:
    """Forward passes of the SQuAD model at seq 384 (inference)."""
    import numpy as np
    import tensorflow as tf

    from nvlm import resolve as resolve_mod
    from nvlm.plugins.electra.plugin import ElectraPlugin

    set_policy(setting)
    cfg = resolve_mod.resolve("electra", "squad", flags={
        "model.size": size, "model.vocab_size": VOCAB, "model.qa_head": head,
        "data.seq_len": args.squad_seq_len,
    }).config  # fmt: skip
    model = ElectraPlugin().build(cfg, "squad")
    rng = np.random.default_rng(args.seed)
    seq, batch = args.squad_seq_len, args.squad_batch_size
    ids = rng.integers(1000, VOCAB, (batch, seq)).astype(np.int32)
    ids[:, 0] = 101
    segments = np.zeros_like(ids)
    segments[:, 64:] = 1  # a 64-token question, then the context window
    inputs = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
              "segment_ids": tf.constant(segments)}  # fmt: skip
    forward = tf.function(lambda x: model(x, training=False), jit_compile=setting.xla)

    def step():
        return {k: v.numpy() for k, v in forward(inputs).items()}

    warm_up(step, args.warmup)
    timing = interleaved({"squad": step}, batch, 1, args.infer_steps)["squad"]
    release_models()
    return {
        "size": size,
        "head": head,
        "setting": str(setting),
        "sequences_per_s": timing.sequences_per_s,
        "latency_p50_ms": timing.percentile_ms(50),
        "latency_p90_ms": timing.percentile_ms(90),
        "all_sequences_per_s": timing.all_sequences_per_s,
        "others_cpu": timing.others_share,
        "others": timing.others_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,base", help="ELECTRA sizes (tiny: a smoke test)")
    parser.add_argument("--settings", default="fp32,fp32+xla,bf16,bf16+xla")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sweep-steps", type=int, default=3)
    parser.add_argument("--final-rounds", type=int, default=2)
    parser.add_argument("--final-steps", type=int, default=4)
    parser.add_argument("--squad-seq-len", type=int, default=384)
    parser.add_argument("--squad-batch-size", type=int, default=8)
    parser.add_argument("--infer-steps", type=int, default=4)
    parser.add_argument("--no-squad", action="store_true")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the parts of a step alone"
    )
    add_guard_options(parser, max_wait=600.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    settings = [Setting.parse(s) for s in args.settings.split(",")]
    seq, bs = args.seq_len, args.batch_size
    print(f"ELECTRA pretraining step (replaced token detection, LAMB, clip 1.0), batch {bs} x "
          f"seq {seq}, {args.predictions} selected positions; SQuAD inference seq "
          f"{args.squad_seq_len} x batch {args.squad_batch_size}")  # fmt: skip
    print(*machine_lines(), sep="\n")
    batches = synthetic_batches(4, bs, seq, args.predictions, args.seed)
    wait_quiet(args)
    print(peak_line(s.precision for s in settings), flush=True)
    results: dict = {**json_header(), "sweep": [], "final": [], "squad": []}

    for size in args.sizes.split(","):
        cfg = electra_config(size, seq, args.predictions)
        e_flops, b_flops = flops_per_sequence(cfg, seq, args.predictions)
        print(f"\n## ELECTRA-{size}: {e_flops / 1e9:.2f} GFLOP per training sequence; the BERT "
              f"twin {b_flops / 1e9:.2f} (ratio {e_flops / b_flops:.2f})")  # fmt: skip
        rows = []
        with tempfile.TemporaryDirectory() as run_dir:
            for setting in settings:
                step = build_step("electra", cfg, setting, batches, run_dir)
                warm = warm_up(step, args.warmup)
                timing = interleaved({"s": step}, bs, 1, args.sweep_steps)["s"]
                compute_ms, apply_ms = step.split_ms(args.sweep_steps)
                fig = {"size": size, "setting": str(setting),
                       "sequences_per_s": timing.sequences_per_s,
                       "all_sequences_per_s": timing.all_sequences_per_s,
                       "mfu": mfu(timing.sequences_per_s, e_flops, setting.precision),
                       "step_ms": 1e3 * timing.median_s, "compute_ms": compute_ms,
                       "apply_ms": apply_ms, "warmup_s": warm,
                       "others_cpu": timing.others_share}  # fmt: skip
                results["sweep"].append(fig)
                print(f"  {size} {setting}: {fig['sequences_per_s']:.2f} sequences/s "
                      f"(others' CPU {timing.others_cpu})", flush=True)  # fmt: skip
                rows.append([str(setting), f"{fig['sequences_per_s']:.2f}",
                             f"{100 * fig['mfu']:.1f}%", f"{fig['step_ms']:.0f}",
                             f"{compute_ms:.0f}", f"{apply_ms:.0f}",
                             timing.others_cpu])  # fmt: skip
                del step
                release_models()
            print(table(["setting", "sequences/s", "MFU", "step ms", "compute ms", "apply ms",
                         "others' CPU"], rows))  # fmt: skip

            best = max((f for f in results["sweep"] if f["size"] == size),
                       key=lambda f: f["sequences_per_s"])  # fmt: skip
            setting = Setting.parse(best["setting"])
            steps = {kind: build_step(kind, cfg, setting, batches, run_dir)
                     for kind in ("electra", "bert")}  # fmt: skip
            for step in steps.values():
                warm_up(step, args.warmup)
            timings = interleaved(steps, bs, args.final_rounds, args.final_steps)
            e, b = timings["electra"], timings["bert"]
            fig = {"size": size, "setting": str(setting),
                   "electra_sequences_per_s": e.sequences_per_s,
                   "bert_sequences_per_s": b.sequences_per_s,
                   "electra_mfu": mfu(e.sequences_per_s, e_flops, setting.precision),
                   "bert_mfu": mfu(b.sequences_per_s, b_flops, setting.precision),
                   "time_ratio": e.median_s / b.median_s, "flops_ratio": e_flops / b_flops,
                   "electra_ms": {"compute": steps["electra"].split_ms(len(e.seconds))[0],
                                  "apply": steps["electra"].split_ms(len(e.seconds))[1]},
                   "bert_ms": {"compute": steps["bert"].split_ms(len(b.seconds))[0],
                               "apply": steps["bert"].split_ms(len(b.seconds))[1]},
                   "others_cpu": {"electra": e.others_share, "bert": b.others_share},
                   "others": f"{e.others_cpu} / {b.others_cpu}"}  # fmt: skip
            results["final"].append(fig)
            steps.clear()
            release_models()
        print(f"\nfinal, {setting}: ELECTRA-{size} {fig['electra_sequences_per_s']:.2f} "
              f"sequences/s (MFU {100 * fig['electra_mfu']:.1f}%), BERT twin "
              f"{fig['bert_sequences_per_s']:.2f} sequences/s (MFU {100 * fig['bert_mfu']:.1f}%); "
              f"step time ratio {fig['time_ratio']:.2f} vs FLOPs ratio {fig['flops_ratio']:.2f} "
              f"(others' CPU {fig['others']})")  # fmt: skip

        if args.breakdown:
            parts = measure_breakdown(cfg, setting, batches, args)
            results.setdefault("breakdown", []).append({"size": size, "setting": str(setting),
                                                        **parts})  # fmt: skip
            print(f"\nparts of an ELECTRA-{size} step alone, {setting} (forward + backward):")
            print(table(["part", "ms", "others' CPU"],
                        [[k, f"{v['ms']:.0f}", v["others"]] for k, v in parts.items()]))  # fmt: skip

        if not args.no_squad:
            rows = []
            for setting in (Setting("bf16", False), Setting("fp32", False)):
                for head in ("joint", "simple"):
                    f = measure_squad(size, setting, head, args)
                    results["squad"].append(f)
                    rows.append([head, str(setting), f"{f['sequences_per_s']:.2f}",
                                 f"{f['latency_p50_ms']:.0f}", f"{f['latency_p90_ms']:.0f}",
                                 f["others"]])  # fmt: skip
            print(f"\nSQuAD inference, ELECTRA-{size}, seq {args.squad_seq_len} x batch "
                  f"{args.squad_batch_size}")  # fmt: skip
            print(table(["head", "setting", "sequences/s", "p50 ms/batch", "p90 ms/batch",
                         "others' CPU"], rows))  # fmt: skip
        if args.json:  # after every size: a long run interrupted later keeps what it measured
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
