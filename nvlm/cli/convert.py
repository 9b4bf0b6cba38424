"""`nvlm convert`: checkpoint interchange with Hugging Face (and from Google TF1 checkpoints),
and SavedModel export for serving."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import JsonFlag, OptionalModelOption, SetOption

# --to savedmodel only (nvlm.convert.savedmodel; docs/serving.md).
TaskOption = Annotated[
    str | None,
    typer.Option(
        "--task", help="savedmodel: squad | features | classify | lm (default: the run's task)."
    ),
]
ServingPrecision = Annotated[
    str | None,
    typer.Option("--precision", help="savedmodel: fp32 | bf16 | fp16 (default fp32)."),
]
ServingBatch = Annotated[
    str | None,
    typer.Option("--batch-size", help="savedmodel: N (fixed batch) or dynamic (default)."),
]
ServingSeqLen = Annotated[
    int | None,
    typer.Option("--seq-len", help="savedmodel: sequence length (default: the run's)."),
]
SAVEDMODEL_ONLY = ("--task", "--precision", "--batch-size", "--seq-len")


def convert(
    src: Annotated[
        str,
        typer.Argument(
            help="An nvlm run/checkpoint, a Hugging Face directory or a Google TF1 checkpoint."
        ),
    ],
    dst: Annotated[Path, typer.Argument(help="Output directory.")],
    model: OptionalModelOption = None,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="hf (config.json + model.safetensors + vocab.txt), nvlm (a run usable as "
            "--init) or savedmodel (TF Serving / Triton: docs/serving.md)",
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
    sets: SetOption = None,
    task: TaskOption = None,
    precision: ServingPrecision = None,
    batch_size: ServingBatch = None,
    seq_len: ServingSeqLen = None,
    json_out: JsonFlag = False,
) -> None:
    r"""Convert a checkpoint between nvlm and Hugging Face formats, or export a run as a TensorFlow SavedModel for TF Serving and Triton (docs/serving.md).

    --model: default, what SRC is. --set changes the config of the run --to nvlm writes (e.g. data.seq_len of an imported SQuAD model) or of the model --to savedmodel exports.

    Examples:

        nvlm convert runs/bert-p1 hf/bert-tiny --to hf

        nvlm convert ~/models/bert-base-uncased runs/bert-base --to nvlm

        nvlm convert hf/bert-squad runs/bert-squad --to nvlm \
          --set data.seq_len=256

        nvlm convert runs/electra-p1 hf/electra-disc --to hf \
          --part discriminator

        nvlm convert runs/bert-squad serving/bert-squad --to savedmodel \
          --task squad --precision bf16 --batch-size dynamic
    """
    from nvlm.outputs import refuse_inputs
    from nvlm.report import emit_json, info, warn

    refuse_inputs(dst, {"SRC": src}, option="DST")
    serving = (task, precision, batch_size, seq_len)
    plugin = _plugin_for(src, model, to, serving, part)
    if to == "savedmodel":
        _savedmodel(plugin, src, dst, overwrite, tuple(sets or ()), serving, json_out)
        return
    out, warnings = _checkpoint(plugin, src, dst, to, overwrite, part, tuple(sets or ()))
    for line in warnings:
        warn(line)
    info(f"wrote {out}")
    if json_out:
        emit_json({"src": str(src), "dst": str(out), "to": to, "warnings": warnings})


def _checkpoint(plugin, src, dst, to, overwrite, part, sets):
    """--to hf | nvlm: (written path, warnings)."""
    from nvlm.errors import UserError

    if sets and to != "nvlm":
        raise UserError(
            f"--set applies to --to nvlm (the config of the run it writes), not --to {to}"
        )
    if part is None:
        return plugin.convert(src, dst, to=to, overwrite=overwrite, sets=sets)
    import inspect  # only plugins whose models have parts take it (ELECTRA)

    if "part" not in inspect.signature(plugin.convert).parameters:
        raise UserError(f"--part applies to models with parts (electra), not {plugin.name}")
    return plugin.convert(src, dst, to=to, overwrite=overwrite, part=part)


def _plugin_for(src, model, to, serving, part):
    """The plugin of --model, or of what SRC is; refuses options --to does not take."""
    from nvlm import registry
    from nvlm.errors import UserError

    if to not in ("hf", "nvlm", "savedmodel"):
        raise UserError(f"--to {to!r} is not a format (use --to hf, nvlm or savedmodel)")
    given = [name for name, v in zip(SAVEDMODEL_ONLY, serving, strict=True) if v is not None]
    if to != "savedmodel" and given:
        raise UserError(f"{given[0]} applies to --to savedmodel, not --to {to}")
    if to == "savedmodel" and part is not None:
        raise UserError("--part applies to --to hf, not --to savedmodel")
    if to == "savedmodel" or model is None:  # --model from SRC (an explicit one must match)
        from nvlm.tasks.inference import model_of_init

        model = model_of_init(src, model)
    return registry.get(model)


def _savedmodel(plugin, src, dst, overwrite, sets, serving, json_out) -> None:
    from nvlm.convert.savedmodel import SavedModelRequest, export_savedmodel, parse_batch_size
    from nvlm.report import emit_json, info

    task, precision, batch_size, seq_len = serving
    request = SavedModelRequest(
        src=src, dst=dst, task=task, precision=precision or "fp32",
        batch_size=parse_batch_size(batch_size), seq_len=seq_len, overwrite=overwrite, sets=sets,
    )  # fmt: skip
    summary = export_savedmodel(plugin, request)
    shapes = ", ".join(f"{k} {v['shape']}" for k, v in summary["outputs"].items())
    info(f"wrote {summary['dst']} ({summary['task']}, {summary['precision']}; outputs: {shapes})")
    if json_out:
        emit_json(summary)
