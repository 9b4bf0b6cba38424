"""`nvlm data ...`: corpora, vocabularies, pretraining shards, downloads (library: nvlm.data).

Every command here parses its options, calls one library function, and prints a summary table
on stderr (or JSON on stdout with --json); `verify`, whose table is its result, prints it on
stdout. Inputs may be given as `--input a.txt b.txt`, repeated `--input`, directories or quoted
globs. No command writes over its inputs, or over a file it did not make unless told
(`--overwrite`). SIGTERM stops a command like Ctrl-C: clean-up runs, exit 143 (Ctrl-C: 130).
One module per command; this one makes the group, in the order `nvlm data --help` lists it.
"""

from __future__ import annotations

import typer

from nvlm.cli.data import demo_corpus, download, lm, pretraining, verify, vocab, wikipedia
from nvlm.cli.data.options import MANY_INPUTS

app = typer.Typer(
    no_args_is_help=True,
    help="Prepare data: WordPiece vocabs, BERT/ELECTRA pretraining shards, downloads, Wikipedia text.",
)
app.command("vocab", context_settings=MANY_INPUTS)(vocab.vocab)
app.command("pretraining", context_settings=MANY_INPUTS)(pretraining.pretraining)
app.command("lm")(lm.lm)
app.command("verify")(verify.verify)
app.command("download")(download.download)
app.command("wikipedia")(wikipedia.wikipedia)
app.command("demo-corpus")(demo_corpus.demo_corpus)
