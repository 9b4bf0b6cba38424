"""The `nvlm` command: one Typer app with a sub-app per command group.

    nvlm --help
    nvlm data vocab --input corpus.txt --vocab-size 30522 --out vocab.txt
    nvlm presets show dgx2-amp --model electra

Error contract (DESIGN.md): a `UserError` prints one line on stderr and exits 2 (the traceback
only with NVLM_DEBUG=1); a `RunFailed` prints one line and exits 1; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer
from typer.core import TyperGroup

from nvlm import __version__
from nvlm.errors import Interrupted, RunFailed, UserError


class NvlmGroup(TyperGroup):
    """Root command group: the single place where user errors become one line + exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (UserError, RunFailed) as exc:
            if os.environ.get("NVLM_DEBUG") == "1":
                traceback.print_exc()
            # A plain write, not rich: rich would wrap a long message onto several lines.
            kind = "" if isinstance(exc, Interrupted) else "error: "
            sys.stderr.write(f"nvlm: {kind}{exc}\n")
            sys.stderr.flush()
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            # Ctrl-C before a run could checkpoint (start-up, evaluation): 130, as a shell
            # reports a process ended by SIGINT, not click's "Aborted!" with status 1.
            sys.stderr.write("\nnvlm: interrupted\n")
            sys.stderr.flush()
            ctx.exit(130)


app = typer.Typer(
    cls=NvlmGroup,
    name="nvlm",
    help="BERT, ELECTRA and Transformer-XL on TensorFlow 2 / Keras 3: data, pretraining, "
    "fine-tuning, evaluation, prediction and benchmarks, from one CPU to many GPUs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nvlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nvlm: one typed CLI instead of piles of shell scripts."""


def _register() -> None:
    # Each command group lives in its own module; only commands that really work are registered.
    from nvlm.cli import (
        benchmark,
        convert,
        data,
        doctor,
        eval,
        finetune,
        predict,
        presets,
        pretrain,
    )

    app.add_typer(data.app, name="data")
    app.add_typer(presets.app, name="presets")
    app.command("pretrain", no_args_is_help=True)(pretrain.pretrain)
    app.command("finetune", no_args_is_help=True)(finetune.finetune)
    app.command("eval", no_args_is_help=True)(eval.evaluate)
    app.command("predict", no_args_is_help=True)(predict.predict)
    app.command("convert", no_args_is_help=True)(convert.convert)
    app.command("doctor")(doctor.doctor)
    app.add_typer(benchmark.app, name="benchmark")


_register()


def run() -> None:
    """Console-script entry point."""
    app(prog_name="nvlm")
