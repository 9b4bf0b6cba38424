"""`nvlm data ...`: corpora, vocabularies, pretraining shards, downloads (library: nvlm.data).

Every command here parses its options, calls one library function, and prints a summary table
on stderr (or JSON on stdout with --json); `verify`, whose table is its result, prints it on
stdout. Inputs may be given as `--input a.txt b.txt`, repeated `--input`, directories or quoted
globs. No command writes over its inputs, or over a file it did not make unless told
(`--overwrite`). SIGTERM stops a command like Ctrl-C: clean-up runs, exit 143 (Ctrl-C: 130).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import JsonFlag
from nvlm.data.stop_signal import sigterm_stops
from nvlm.errors import UserError
from nvlm.report import console, emit_json, print_result_table, print_table, summary_table

app = typer.Typer(
    no_args_is_help=True,
    help="Prepare data: WordPiece vocabs, BERT/ELECTRA pretraining shards, downloads, Wikipedia text.",
)

# Click options take a fixed number of values; extra arguments after --input are collected
# from the context so that `--input data/*.txt` (expanded by the shell) works.
_MANY = {"allow_extra_args": True}

InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="Input files, directories or globs (repeatable; several may follow one --input).",
    ),
]
ErrorsOption = Annotated[
    str,
    typer.Option(
        "--errors",
        help="On bytes that are not UTF-8: strict (stop, naming file and byte offset) or replace.",
    ),
]


def _overwrite_option(what: str) -> object:
    return Annotated[bool, typer.Option("--overwrite", help=f"Replace {what}.")]


def _inputs(ctx: typer.Context, given: list[str] | None) -> list[str]:
    extra = [a for a in ctx.args if not a.startswith("-")]
    unknown = [a for a in ctx.args if a.startswith("-")]
    if unknown:
        raise UserError(f"unknown option {unknown[0]}", hint="see --help")
    return [*(given or []), *extra]


# Table labels where the summary key alone would not say the unit.
_LABELS = {"out": "output", "seconds": "wall time (s)", "tokens_per_second": "tokens/s"}


def _finish(title: str, summary: dict, json_: bool, keys: str) -> None:
    """JSON on stdout, or a table on stderr of the summary's `keys` (space separated)."""
    if json_:
        emit_json(summary)
    else:
        rows = [(_LABELS.get(k, k.replace("_", " ")), summary[k]) for k in keys.split()]
        print_table(summary_table(title, rows))


@app.command("vocab", context_settings=_MANY)
def vocab(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="The vocab.txt to write.")],
    inputs: InputOption = None,
    vocab_size: Annotated[
        int,
        typer.Option("--vocab-size", help="Tokens in the vocab, specials included (BERT: 30522)."),
    ] = 30522,
    lowercase: Annotated[
        bool,
        typer.Option(
            "--lowercase/--cased", help="Lowercase and strip accents (uncased vocab) or not."
        ),
    ] = True,
    min_freq: Annotated[
        int, typer.Option("--min-freq", help="Ignore merges seen fewer times.")
    ] = 2,
    min_frequency: Annotated[
        int | None, typer.Option("--min-frequency", hidden=True, help="Old name of --min-freq.")
    ] = None,
    errors: ErrorsOption = "strict",
    overwrite: _overwrite_option("--out if it exists") = False,
    json_: JsonFlag = False,
) -> None:
    """Train a BERT-style WordPiece vocab (one token per line; [PAD] [UNK] [CLS] [SEP] [MASK] = ids 0-4).

    Example:

        nvlm data vocab --input corpus/*.txt --vocab-size 30522 --out vocab.txt
    """
    from nvlm.data.inputs import expand_inputs
    from nvlm.data.vocab_trainer import train_vocab

    if min_frequency is not None:  # the option's name before `data lm`'s --min-freq set it
        from nvlm.report import warn

        warn("--min-frequency is now --min-freq (the old name works until the next release)")
        min_freq = min_frequency
    # A directory input may hold --out: the vocab is not text to learn from.
    paths = expand_inputs(_inputs(ctx, inputs), exclude=out)
    with sigterm_stops("data vocab"):
        summary = train_vocab(
            paths, vocab_size, out, cased=not lowercase, min_frequency=min_freq, errors=errors,
            overwrite=overwrite,
        )  # fmt: skip
    _finish(
        "nvlm data vocab",
        summary,
        json_,
        "out vocab_size vocab_size_requested lowercase lines seconds",
    )
    if summary["vocab_size"] < summary["vocab_size_requested"] and not json_:
        console().print(
            f"[yellow]note:[/yellow] the text only supports {summary['vocab_size']:,} tokens "
            f"(asked for {summary['vocab_size_requested']:,})"
        )


class Model(StrEnum):
    bert = "bert"
    electra = "electra"


@app.command("pretraining", context_settings=_MANY)
def pretraining(
    ctx: typer.Context,
    model: Annotated[
        Model,
        typer.Option(
            "--model", "-m", help="bert: masked sentence pairs + NSP; electra: packed, unmasked."
        ),
    ],
    vocab: Annotated[
        Path, typer.Option("--vocab", help="WordPiece vocab.txt (see `nvlm data vocab`).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory for shards and manifest.json.")
    ],
    inputs: InputOption = None,
    seq_len: Annotated[
        int, typer.Option("--seq-len", help="Tokens per instance, specials included (8-512).")
    ] = 128,
    max_predictions: Annotated[
        int | None,
        typer.Option(
            "--max-predictions", help="Masked positions per instance at most (BERT; default 20)."
        ),
    ] = None,
    masked_lm_prob: Annotated[
        float | None,
        typer.Option("--masked-lm-prob", help="Share of tokens masked (BERT; default 0.15)."),
    ] = None,
    dupe_factor: Annotated[
        int | None,
        typer.Option("--dupe-factor", help="Passes over the corpus (default: 5 BERT, 1 ELECTRA)."),
    ] = None,
    short_seq_prob: Annotated[
        float | None,
        typer.Option(
            "--short-seq-prob",
            help="Chance of a shorter target length (default: 0.1 BERT, 0.05 ELECTRA).",
        ),
    ] = None,
    shards: Annotated[
        int, typer.Option("--shards", help="HDF5 files to write; 0 = one per 64 MiB of input.")
    ] = 0,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes; 0 = one per CPU core.")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 12345,
    lowercase: Annotated[
        bool,
        typer.Option(
            "--lowercase/--cased", help="Lowercase and strip accents (uncased vocab) or not."
        ),
    ] = True,
    whole_word_masking: Annotated[
        bool, typer.Option("--whole-word-masking", help="Mask every piece of a chosen word (BERT).")
    ] = False,
    split_sentences: Annotated[
        bool,
        typer.Option(
            "--split-sentences",
            help="Input lines are paragraphs: split them into sentences (pysbd).",
        ),
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help="Language of the sentence splitter.")] = "en",
    errors: ErrorsOption = "strict",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace what --out holds, even if made with other parameters."
        ),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    r"""Make pretraining shards (HDF5) and manifest.json from text: one sentence per line, blank line between documents.

    Re-running the same command keeps finished shards and makes only the missing ones.

    Example:

        nvlm data pretraining --model bert --input corpus/ --vocab vocab.txt \
          --out data/bert-128 --shards 8 --workers 4
    """
    from nvlm.data.inputs import expand_inputs
    from nvlm.data.pretraining.config import PretrainingConfig
    from nvlm.data.pretraining.prepare import prepare_pretraining
    from nvlm.data.progress import PipelineProgress
    from nvlm.outputs import refuse_inputs

    cfg = PretrainingConfig.create(
        model.value, seq_len=seq_len, max_predictions=max_predictions, masked_lm_prob=masked_lm_prob,
        dupe_factor=dupe_factor, short_seq_prob=short_seq_prob, shards=shards, seed=seed,
        lowercase=lowercase, whole_word_masking=whole_word_masking, split_sentences=split_sentences,
        lang=lang, errors=errors,
    )  # fmt: skip
    if model is Model.electra and (max_predictions or masked_lm_prob or whole_word_masking):
        console().print(
            "[yellow]warning:[/yellow] ELECTRA shards are unmasked; masking options are ignored"
        )
    specs = _inputs(ctx, inputs)
    refuse_inputs(out, {"--input": specs, "--vocab": vocab})
    # A directory input may hold this --out: an earlier run's shards are not text.
    paths = expand_inputs(specs, exclude=out)
    with sigterm_stops("data pretraining", "finished shards are kept: re-run to resume"):
        summary = prepare_pretraining(
            cfg, paths, vocab, out, workers=workers or os.cpu_count() or 1, overwrite=overwrite,
            progress=PipelineProgress,  # on stderr: it never mixes with --json on stdout
        )  # fmt: skip
    _finish(
        f"nvlm data pretraining ({summary['model']})",
        summary,
        json_,
        "out documents sentences tokens instances masked_tokens shards shards_built shards_kept "
        "workers tokens_per_second seconds",
    )


@app.command("lm")
def lm(
    train: Annotated[
        Path,
        typer.Option("--train", help="Training text: one line per line, words split by spaces."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (vocab, id streams, manifest).")
    ],
    valid: Annotated[Path | None, typer.Option("--valid", help="Validation text.")] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Test text.")] = None,
    vocab: Annotated[
        Path | None,
        typer.Option(
            "--vocab", help="Use this vocab.txt (e.g. a checkpoint's) instead of counting --train."
        ),
    ] = None,
    min_freq: Annotated[
        int, typer.Option("--min-freq", help="Words seen fewer times in --train become <unk>.")
    ] = 1,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size", help="Keep at most N tokens (the most frequent); the rest is <unk>."
        ),
    ] = None,
    overwrite: _overwrite_option("files in --out that nvlm data lm did not make") = False,
    json_: JsonFlag = False,
) -> None:
    r"""Tokenize a word-level corpus (WikiText style) for Transformer-XL: a frequency-ordered vocabulary, one int32 token stream per split (HDF5) and a manifest.

    Every line ends with <eos>; words keep their case; <unk> stays a token. The streams do not depend on batch size, sequence length or GPU count.

    Example:

        nvlm data lm --train wikitext-103/wiki.train.tokens \
          --valid wikitext-103/wiki.valid.tokens \
          --test wikitext-103/wiki.test.tokens --out data/wt103
    """
    from nvlm.data.lm.corpus import build_lm_corpus

    inputs = {"train": train, "valid": valid, "test": test}
    with sigterm_stops("data lm"):
        summary = build_lm_corpus(
            {k: v for k, v in inputs.items() if v is not None},
            out,
            vocab=vocab,
            min_freq=min_freq,
            max_size=max_size,
            overwrite=overwrite,
            on_split=None if json_ else (lambda what: console().print(f"[dim]{what}...[/dim]")),
        )
    keys = "out vocab_size vocab_source " + " ".join(
        f"{s}_tokens {s}_unk" for s in ("train", "valid", "test") if f"{s}_tokens" in summary
    )
    _finish("nvlm data lm", summary, json_, keys + " seconds")


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="A directory made by an `nvlm data` command.")],
    json_: JsonFlag = False,
) -> None:
    """Re-check every shard against manifest.json: sha256, datasets, shapes, dtypes, value ranges, counts.

    The result (a `bad NAME: problems` line per bad file, then the table) goes to stdout, so `nvlm data verify DIR | grep bad` works; exits 2 and names the bad files if any is bad.

    Example:

        nvlm data verify data/bert-128
    """
    from nvlm.data.verify import verify_directory

    report = verify_directory(directory)
    if json_:
        emit_json(report)
    else:
        for bad in report["bad"]:
            # Plain text: one line per file whatever the terminal width (grep, awk).
            typer.echo(f"bad {bad['name']}: " + "; ".join(bad["problems"]))
        for name in report.get("unlisted_files", []):
            console().print(f"[yellow]warning:[/yellow] {name} is not listed in the manifest")
        print_result_table(
            summary_table(
                f"nvlm data verify ({report['kind']})",
                [
                    ("directory", report["directory"]),
                    ("files checked", report["files"]),
                    ("bad files", len(report["bad"])),
                    ("tokens", report["tokens"])
                    if "tokens" in report
                    else ("instances", report.get("instances", 0)),
                ],
            )
        )
    if report["bad"]:
        raise UserError(
            f"{len(report['bad'])} of {report['files']} shard(s) in {directory} are bad: "
            + _bad_summary(report["bad"]),
            hint=report.get(
                "rebuild_hint", "re-run the same `nvlm data pretraining` command to rebuild them"
            ),
        )


def _bad_summary(bad: list[dict], files: int = 4, problems: int = 2) -> str:
    """`name: problem; problem, name: ...`, a few of each: the error line stays readable when
    stdout (the full list) goes to a pipe."""
    parts = []
    for entry in bad[:files]:
        shown = entry["problems"][:problems]
        more = len(entry["problems"]) - len(shown)
        parts.append(f"{entry['name']}: " + "; ".join(shown) + (f" (+{more} more)" if more else ""))
    if len(bad) > files:
        parts.append(f"and {len(bad) - files} more")
    return ", ".join(parts)


class Dataset(StrEnum):
    squad = "squad"
    wikitext_2 = "wikitext-2"
    wikitext_103 = "wikitext-103"
    wikipedia = "wikipedia"


@app.command("download")
def download(
    dataset: Annotated[
        Dataset, typer.Argument(help="squad, wikitext-2, wikitext-103 or wikipedia.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to download into.")],
    version: Annotated[
        str | None, typer.Option("--version", help="SQuAD version: 1.1 (default) or 2.0.")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Wikipedia language code.")] = "en",
    from_path: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Take the files from this local file or directory instead of the network (verified the same way).",
        ),
    ] = None,
    overwrite: _overwrite_option("files in --out that are not the published ones") = False,
    json_: JsonFlag = False,
) -> None:
    """Download an official data set, verify its published checksum, unpack it.

    Interrupted downloads resume (HTTP Range) when the command is run again.

    Example:

        nvlm data download squad --version 2.0 --out data
    """
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from nvlm.data.download.fetch import download_dataset

    # transient: the bars go when done (the table says what came), so an error stays one line.
    with Progress(
        *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
        console=console(), transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def on_bytes(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        with sigterm_stops(f"data download {dataset.value}"):
            summary = download_dataset(
                dataset.value, out, version=version, lang=lang, from_path=from_path,
                overwrite=overwrite, on_bytes=on_bytes,
            )  # fmt: skip
    rows = [
        (Path(f["path"]).name, f"{f['checksum'].split(':')[0]} ok, {f['bytes']:,} bytes")
        for f in summary["files"]
    ]
    rows += [("unpacked", p) for p in summary["unpacked"]]
    if json_:
        emit_json(summary)
    else:
        print_table(summary_table(f"nvlm data download {dataset.value}", rows))


@app.command("wikipedia")
def wikipedia(
    dump: Annotated[Path, typer.Argument(help="A pages-articles .xml.bz2 dump.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the text files.")],
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes; 0 = one per CPU core.")
    ] = 0,
    shards: Annotated[
        int, typer.Option("--shards", help="Text files to write (article k goes to file k mod N).")
    ] = 4,
    lang: Annotated[str, typer.Option("--lang", help="Language of the sentence splitter.")] = "en",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace text files already in --out.")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    r"""Extract article text from a Wikipedia dump: one sentence per line, blank line between articles.

    The output is ready for `nvlm data pretraining`.

    Example:

        nvlm data wikipedia data/wikipedia/enwiki-latest-pages-articles.xml.bz2 \
          --out data/wiki-text --workers 8 --shards 64
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from nvlm.data.wikipedia.extract import extract_wikipedia

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("reading pages")

        def on_pages(pages: int, documents: int) -> None:
            bar.update(task, description=f"{pages:,} pages read, {documents:,} articles written")

        with sigterm_stops("data wikipedia"):
            summary = extract_wikipedia(
                dump, out, workers=workers or os.cpu_count() or 1, shards=shards, lang=lang,
                overwrite=overwrite, on_pages=on_pages,
            )  # fmt: skip
    _finish(
        "nvlm data wikipedia",
        summary,
        json_,
        "out pages articles documents sentences redirects skipped_namespace empty files seconds",
    )


@app.command("demo-corpus")
def demo_corpus(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write corpus.txt into.")],
    documents: Annotated[
        int, typer.Option("--documents", "-n", help="Documents to generate.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same text.")] = 0,
    squad: Annotated[
        str | None,
        typer.Option("--squad", help="Also write squad-train.json / squad-dev.json (1.1 or 2.0)."),
    ] = None,
    overwrite: _overwrite_option("corpus.txt (and the SQuAD files) if --out holds them") = False,
    json_: JsonFlag = False,
) -> None:
    """Write a synthetic corpus (made-up people, towns and dishes; our own templates) for demos and tests.

    Example:

        nvlm data demo-corpus --out demo-data --documents 2000 --squad 1.1
    """
    from nvlm.data.demo_corpus import write_demo_corpus
    from nvlm.outputs import check_output_file

    if squad not in (None, "1.1", "2.0"):
        raise UserError(f"--squad {squad} is not a SQuAD version (use 1.1 or 2.0)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    names = ["corpus.txt", *(["squad-train.json", "squad-dev.json"] if squad else [])]
    for name in names:  # all checked before any is written
        check_output_file(out / name, overwrite=overwrite)
    summary = write_demo_corpus(out, documents, seed)
    fields = "path documents sentences words"
    if squad:
        from nvlm.data.demo_squad import write_demo_squad

        summary.update(write_demo_squad(out, people=200, seed=seed, version=squad))
        fields += " train dev train_questions dev_questions"
    _finish("nvlm data demo-corpus", summary, json_, fields)
