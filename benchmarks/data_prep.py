"""Benchmark: `nvlm data pretraining` (BERT phase-1 recipe) against raw `tokenizers` speed.

    python benchmarks/data_prep.py                      # WikiText-2 valid+test x10, 2 workers
    python benchmarks/data_prep.py --repeat 2 --keep    # quicker; keep the work directory

Input: WikiText-2 valid+test (read from --wikitext-dir; nothing else in nvlm reads it) turned
into the pretraining input format (articles start at ` = Title = ` headings, sub-headings are
dropped, paragraphs are split into sentences at " . ", " ? ", " ! "), repeated --repeat times.
A lowercase WordPiece vocab is trained on that text with `nvlm data vocab`. Then, timed:
  1. the whole pipeline, as a user runs it: `python -m nvlm data pretraining --model bert
     --seq-len 128 --max-predictions 20 --masked-lm-prob 0.15 --dupe-factor 5 --workers 2`
     (process start, input hashing, tokenizing, instances, HDF5, manifest: all of it);
  2. raw `Tokenizer.encode_batch` over the same sentences with the same vocab, in this process
     (the tokenizer's own thread pool uses every core), best of two batchings.
Figure of merit: input tokens/s of (1) / tokens/s of (2); target >= 0.5. Both are measured back
to back in each of --rounds rounds, and the median round is reported (shared machines vary).
Each is one call timed by `nvlm.bench.timing.time_calls`; a run first waits for the machine to
be quiet (`wait_until_quiet`, --max-busy / --max-wait) and every round carries the share of the
CPUs other processes used while it ran (`foreign_cpu`), as `nvlm benchmark` does.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

# A sibling module, found through sys.path[0] (this folder): see bert_train.py.
from common import add_guard_options, others_during, percent, wait_quiet

from nvlm.bench import records
from nvlm.bench.timing import time_calls

REPO = Path(__file__).resolve().parents[1]
_SENTENCE_END = re.compile(r"(?<= [.?!]) (?=\S)")


def wikitext_to_documents(path: Path) -> list[list[str]]:
    """Articles of a WikiText file as lists of sentences."""
    docs: list[list[str]] = []
    for raw in path.read_text(encoding="utf-8").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if re.fullmatch(r"= [^=].* =", line):  # ` = Title = ` starts an article
            docs.append([])
            continue
        if line.startswith("= ="):  # ` = = Section = = `: not prose
            continue
        if not docs:
            docs.append([])
        docs[-1].extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return [d for d in docs if d]


def nvlm(*args: str) -> tuple[dict, float, str]:
    command = [sys.executable, "-m", "nvlm", *args, "--json"]
    runs = []
    (seconds,) = time_calls(
        lambda: runs.append(subprocess.run(command, capture_output=True, text=True, cwd=REPO)), 1
    )
    done = runs[0]
    if done.returncode != 0:
        sys.exit(f"failed: {shlex.join(command)}\n{done.stderr}")
    return json.loads(done.stdout), seconds, shlex.join(["nvlm", *args])


def raw_tokenization(vocab_path: Path, sentences: list[str]) -> dict:
    from nvlm.data.vocab import Vocab

    tokenizer = Vocab.load(vocab_path).tokenizer(lowercase=True)
    results = {}
    for label, method, batch in (
        ("encode_batch, 8192 per call", "encode_batch", 8192),
        ("encode_batch, one call", "encode_batch", len(sentences)),
        ("encode_batch_fast, 8192 per call", "encode_batch_fast", 8192),
    ):
        encode = getattr(tokenizer, method)
        counted = []

        def encode_all(encode=encode, batch=batch, counted=counted) -> None:
            counted.append(
                sum(
                    len(e)
                    for i in range(0, len(sentences), batch)
                    for e in encode(sentences[i : i + batch], add_special_tokens=False)
                )
            )

        (seconds,) = time_calls(encode_all, 1)
        tokens = counted[0]
        results[label] = {
            "tokens": tokens,
            "seconds": round(seconds, 3),
            "tokens_per_second": tokens / seconds,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--wikitext-dir", type=Path, default=REPO / ".." / "shared" / "data" / "wikitext-2"
    )
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument(
        "--rounds", type=int, default=3, help="pipeline + raw measurements (median ratio)"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="work directory (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    add_guard_options(parser, max_wait=300.0)
    args = parser.parse_args()

    sources = [args.wikitext_dir / "valid.txt", args.wikitext_dir / "test.txt"]
    for source in sources:
        if not source.is_file():
            sys.exit(f"{source} not found (pass --wikitext-dir)")
    work = args.work or Path(tempfile.mkdtemp(prefix="nvlm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    docs = [d for source in sources for d in wikitext_to_documents(source)]
    once = "\n\n".join("\n".join(d) for d in docs) + "\n\n"
    corpus = work / "corpus.txt"
    corpus.write_text(once * args.repeat, encoding="utf-8")
    sentences = [s for d in docs for s in d] * args.repeat
    words = len(once.split()) * args.repeat

    vocab_summary, vocab_seconds, vocab_cmd = nvlm(
        "data",
        "vocab",
        "--input",
        str(corpus),
        "--vocab-size",
        str(args.vocab_size),
        "--out",
        str(work / "vocab.txt"),
        "--overwrite",  # a --work directory may hold the vocab of an earlier run
    )
    # The machine may be shared: measure pipeline and raw tokenization back to back, several
    # rounds, and take the median of the per-round ratios (each round sees similar load).
    # The guard's notes go to stderr: with --json, stdout holds the figures only.
    wait_quiet(args, stream=sys.stderr)
    rounds = []

    def one_round():
        pipe, pipe_seconds, pipe_cmd = nvlm(
            "data", "pretraining", "--model", "bert", "--input", str(corpus), "--vocab", str(work / "vocab.txt"),
            "--out", str(work / "shards"), "--seq-len", "128", "--max-predictions", "20", "--masked-lm-prob", "0.15",
            "--dupe-factor", "5", "--short-seq-prob", "0.1", "--workers", str(args.workers), "--shards", str(args.shards),
            "--overwrite",
        )  # fmt: skip
        return pipe, pipe_seconds, pipe_cmd, raw_tokenization(work / "vocab.txt", sentences)

    for _ in range(args.rounds):
        # The pipeline's processes are waited for, so their CPU time is this script's: the
        # share left is other people's.
        (pipe, pipe_seconds, pipe_cmd, raw), others = others_during(one_round)
        pipeline_tps = pipe["tokens"] / pipe_seconds
        reference = max(
            v["tokens_per_second"] for k, v in raw.items() if k.startswith("encode_batch,")
        )
        rounds.append(
            {
                "others_cpu": None if others is None else round(others, 3),
                "pipeline_seconds": round(pipe_seconds, 2),
                "pipeline_tokens_per_second": round(pipeline_tps),
                "raw": {
                    k: {**v, "tokens_per_second": round(v["tokens_per_second"])}
                    for k, v in raw.items()
                },
                "ratio": round(pipeline_tps / reference, 3),
            }
        )
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    figures = {
        "machine": records.machine(),
        "versions": records.versions(),
        "input": {
            "documents": len(docs) * args.repeat,
            "sentences": len(sentences),
            "words": words,
            "repeat": args.repeat,
        },
        "vocab": {
            "requested": args.vocab_size,
            "size": vocab_summary["vocab_size"],
            "seconds": round(vocab_seconds, 1),
            "command": vocab_cmd,
        },
        "pipeline": {
            "command": pipe_cmd,
            "input_tokens": pipe["tokens"],
            "instances": pipe["instances"],
        },
        "rounds": rounds,
        "median_round": median,
        "target": 0.5,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        m, p = figures["machine"], figures["pipeline"]
        print(f"machine   {m['cpu']}, {m['cores']} cores")
        print(
            f"input     {figures['input']['words']:,} words, {len(sentences):,} sentences, {figures['input']['documents']:,} documents"
        )
        print(
            f"vocab     {figures['vocab']['size']:,} tokens (asked {args.vocab_size:,}): {vocab_cmd}"
        )
        print(f"pipeline  {pipe_cmd}")
        print(f"          {p['input_tokens']:,} input tokens -> {p['instances']:,} instances")
        for n, r in enumerate(rounds, 1):
            raw_figures = ", ".join(f"{k} {v['tokens_per_second']:,}" for k, v in r["raw"].items())
            print(
                f"round {n}   others' CPU {percent(r['others_cpu'])}: pipeline {r['pipeline_tokens_per_second']:,} tokens/s "
                f"({r['pipeline_seconds']} s); raw tokens/s: {raw_figures}; ratio {r['ratio']}"
            )
        print(
            f"ratio     {median['ratio']} (median round; pipeline / best encode_batch; target >= 0.5)"
        )
    if not args.keep and args.work is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
