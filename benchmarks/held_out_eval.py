"""Held-out evaluation while pretraining on 2 processes: rank 0 alone, or shared by the ranks
(`train.eval_shared`), against 1 process.

    python benchmarks/held_out_eval.py --shards SHARDS --heldout HELDOUT
    python benchmarks/held_out_eval.py --shards S --heldout H --size small --evals 3

Each run is `nvlm pretrain --model bert` of `--size` for `--evals` x `--every` steps, evaluating
the held-out shards every `--every` steps; the trainer times each evaluation and prints it
("step N: held-out ... (T s)" in the rank-0 log). Figures: the median evaluation time (s) of a
run, held-out sequences per second, and the ratio to 1 process. On this 2-core machine one
process runs 2 TensorFlow threads and each of 2 processes 1 (nvlm's pinning), so a shared
evaluation can at best match 1 process, and rank 0 alone runs it on 1 of the 2 cores.
Run from the repository root as a file; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py

# A sibling module, found through sys.path[0] (this folder): see bert_train.py.
from common import add_guard_options, machine_lines, wait_quiet


def held_out_sequences(heldout: Path) -> int:
    total = 0
    for path in sorted(heldout.glob("*.hdf5")):
        with h5py.File(path) as f:
            total += len(f["input_ids"])
    return total


def eval_times(run: Path) -> list[float]:
    times = []
    for log in sorted((run / "logs").glob("*.log")):
        times += [float(t) for t in re.findall(r"held-out .*\(([\d.]+) s\)", log.read_text())]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=Path, required=True, help="training shards (bert)")
    ap.add_argument("--heldout", type=Path, required=True, help="held-out shards (bert)")
    ap.add_argument("--size", default="small")
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--evals", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    add_guard_options(ap, max_wait=600)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nvlm-held-out-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    n = held_out_sequences(args.heldout)
    for line in machine_lines():
        print(f"# {line}")
    print(f"# BERT {args.size}, {n} held-out sequences, evaluated every {args.every} steps")
    print("setting\tmedian evaluation (s)\theld-out sequences/s\tvs 1 process")
    runs = {
        "1 process": ["--set", "train.batch_size=8"],
        "2 ranks, rank 0 alone": ["--gpus", 2, "--launcher", "horovodrun", "--set",
                                  "train.batch_size=4", "--set", "train.eval_shared=false"],
        "2 ranks, shared": ["--gpus", 2, "--launcher", "horovodrun", "--set",
                            "train.batch_size=4", "--set", "train.eval_shared=true"],
    }  # fmt: skip
    base = None
    for name, extra in runs.items():
        wait_quiet(args)
        out = work / re.sub(r"\W+", "-", name)
        with (work / "commands.log").open("a") as log:
            subprocess.run(
                [sys.executable, "-m", "nvlm", "pretrain", "--model", "bert", "--preset",
                 "cpu-fp32", "--data", str(args.shards), "--out", str(out), "--overwrite",
                 "--steps", str(args.every * args.evals), "--eval-data", str(args.heldout),
                 "--set", f"model.size={args.size}", "--set", "train.accumulation=1",
                 "--set", f"train.eval_every={args.every}", *map(str, extra)],
                check=True, stdout=log, stderr=log,
            )  # fmt: skip
        median = statistics.median(eval_times(out))
        base = base or median
        print(f"{name}\t{median:.2f}\t{n / median:.1f}\t{base / median:.2f}x")
    print(f"# runs in {work}")


if __name__ == "__main__":
    main()
