"""`nvlm convert`: checkpoint interchange with Hugging Face (and from Google TF1 checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import JsonFlag


def convert(
    src: Annotated[
        str,
        typer.Argument(
            help="An nvlm run/checkpoint, a Hugging Face directory or a Google TF1 checkpoint."
        ),
    ],
    dst: Annotated[Path, typer.Argument(help="Output directory.")],
    model: Annotated[str, typer.Option("--model", "-m", help="bert | electra")] = "bert",
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="hf (config.json + model.safetensors + vocab.txt) or nvlm (a run usable as --init)",
        ),
    ] = "hf",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace DST if it exists.")
    ] = False,
    part: Annotated[
        str | None,
        typer.Option(
            "--part",
            help="electra --to hf: discriminator or generator of a pretraining run "
            "(default: both, as DST/discriminator and DST/generator).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    r"""Convert a checkpoint between nvlm and Hugging Face formats.

    Examples:

        nvlm convert runs/bert-p1 hf/bert-tiny --model bert --to hf

        nvlm convert ~/models/bert-base-uncased runs/bert-base --model bert --to nvlm

        nvlm convert runs/electra-p1 hf/electra-disc --model electra --to hf \
          --part discriminator
    """
    from nvlm import registry
    from nvlm.errors import UserError
    from nvlm.outputs import refuse_inputs
    from nvlm.report import emit_json, info, warn

    refuse_inputs(dst, {"SRC": src}, option="DST")
    plugin = registry.get(model)
    if to not in ("hf", "nvlm"):
        raise UserError(f"--to {to!r} is not a format (use --to hf or --to nvlm)")
    if part is None:
        out, warnings = plugin.convert(src, dst, to=to, overwrite=overwrite)
    else:  # only plugins whose models have parts take it (ELECTRA)
        import inspect

        if "part" not in inspect.signature(plugin.convert).parameters:
            raise UserError(f"--part applies to models with parts (electra), not {model}")
        out, warnings = plugin.convert(src, dst, to=to, overwrite=overwrite, part=part)
    for line in warnings:
        warn(line)
    info(f"wrote {out}")
    if json_out:
        emit_json({"src": str(src), "dst": str(out), "to": to, "warnings": warnings})
