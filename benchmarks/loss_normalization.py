"""How far apart the same training is when its examples are split differently, per
`train.loss_normalization`: 1 process x micro-batch 2b, 1 x b with accumulation 2, and 2 ranks
x b (horovodrun), on BERT shards made by `nvlm data pretraining` from a real text file.

    python benchmarks/loss_normalization.py --text ../shared/data/wikitext-2/valid.txt
    python benchmarks/loss_normalization.py --text corpus.txt --size tiny --steps 6 --micro 4

Every run is the same tiny BERT (dropout 0, LAMB, the cpu-fp32 preset), from the same initial
weights and on the same examples per step. Figures (no timing): the largest absolute difference
of any weight after the last step against the 1 x 2b run, and of the logged loss (nats) of any
step. With "step_tokens" the splits are the same computation up to float rounding; with
"micro_batch" (the reference recipes) a masked token of a micro-batch with few of them weighs
more, so the splits train differently. Run from the repository root as a file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

# A sibling module, found through sys.path[0] (this folder): see bert_train.py.
from common import machine_lines


def nvlm(*args, log: Path) -> None:
    with log.open("a") as out:
        subprocess.run([sys.executable, "-m", "nvlm", *map(str, args)], check=True,
                       stdout=out, stderr=out)  # fmt: skip


def weights(run: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    names = reader.get_variable_to_shape_map()
    return {k: reader.get_tensor(k) for k in names if k.startswith("state/model_vars/")}


def losses(run: Path) -> np.ndarray:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return np.array([x["loss"] for x in lines if "loss" in x])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", required=True, help="a text file (one paragraph per line)")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--micro", type=int, default=4, help="b: the split runs' micro-batch")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--work", type=Path, default=None, help="keep the runs here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nvlm-normalization-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"  # what the nvlm commands printed
    corpus, vocab, shards = work / "corpus.txt", work / "vocab.txt", work / "shards"
    if not shards.exists():
        # Paragraphs as documents (blank line between), the layout nvlm data pretraining reads.
        text = [ln.strip() for ln in Path(args.text).read_text().splitlines()]
        corpus.write_text("\n\n".join(ln for ln in text if ln and not ln.startswith("=")) + "\n")
        nvlm("data", "vocab", "--input", corpus, "--vocab-size", 8000, "--out", vocab, log=log)
        nvlm("data", "pretraining", "--model", "bert", "--input", corpus, "--vocab", vocab,
             "--out", shards, "--seq-len", args.seq_len, "--shards", 2, "--dupe-factor", 1, log=log)  # fmt: skip
    for line in machine_lines():
        print(f"# {line}")
    print(f"# tiny BERT ({args.size}), {args.steps} LAMB steps, seq {args.seq_len}, "
          f"global batch {2 * args.micro}, dropout 0")  # fmt: skip
    print("mode\tsplit\tmax |weight diff|\tmax |loss diff| (nats)")
    for mode in ("step_tokens", "micro_batch"):
        runs = {}
        for split, extra in (
            ("1x2b", ["--set", f"train.batch_size={2 * args.micro}",
                      "--set", "train.accumulation=1"]),
            ("1xb-accum2", ["--set", f"train.batch_size={args.micro}",
                            "--set", "train.accumulation=2"]),
            ("2xb-ranks", ["--set", f"train.batch_size={args.micro}", "--gpus", 2,
                           "--set", "train.accumulation=1", "--launcher", "horovodrun"]),
        ):  # fmt: skip
            out = work / f"{mode}-{split}"
            if not (out / "summary.json").exists():
                nvlm("pretrain", "--model", "bert", "--preset", "cpu-fp32", "--data", shards,
                     "--out", out, "--steps", args.steps, "--set", f"model.size={args.size}",
                     "--set", "model.dropout=0", "--set", "model.attention_dropout=0",
                     "--set", "train.warmup_steps=2", "--set", "train.log_every=1",
                     "--set", f"train.loss_normalization={mode}",
                     "--set", f"data.seq_len={args.seq_len}", *extra, log=log)  # fmt: skip
            runs[split] = out
        base_w, base_l = weights(runs["1x2b"]), losses(runs["1x2b"])
        for split in ("1xb-accum2", "2xb-ranks"):
            w, lo = weights(runs[split]), losses(runs[split])
            dw = max(float(np.abs(w[k] - base_w[k]).max()) for k in base_w)
            dl = float(np.abs(lo - base_l).max())
            print(f"{mode}\t{split}\t{dw:.2e}\t{dl:.2e}")
    print(f"# runs kept in {work}, their output in {log}")


if __name__ == "__main__":
    main()
