"""`nvlm presets list|show`: the hardware presets, read from YAML (library: nvlm.presets)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from nvlm import presets
from nvlm.cli.options import JsonFlag
from nvlm.config import model_key
from nvlm.errors import UserError
from nvlm.registry import canonical
from nvlm.report import console, emit_json, format_value, print_result_table

app = typer.Typer(
    no_args_is_help=True,
    help="Hardware presets (one YAML file per system and precision): list them, show one.",
)

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Only this model: bert, electra or transformer-xl."),
]
PresetArg = Annotated[
    str, typer.Argument(help="Preset name (see `nvlm presets list`) or a path to a YAML file.")
]


def _system_dict(preset: presets.Preset) -> dict[str, Any]:
    s = preset.system
    return {
        "name": s.name,
        "gpus_per_node": s.gpus_per_node,
        "gpu": s.gpu,
        "gpu_memory_gb": s.gpu_memory_gb,
        "precision": s.precision,
        "peak_tflops": s.peak_tflops,
    }


def _devices(preset: presets.Preset) -> str:
    s = preset.system
    return f"{s.gpus_per_node}x {s.gpu}" if s.gpu else f"{s.gpus_per_node} process (CPU)"


@app.command("list")
def list_presets(json_: JsonFlag = False) -> None:
    """List the presets: shipped ones and those in NVLM_PRESET_PATH directories.

    Examples:

        nvlm presets list

        nvlm presets list --json
    """
    loaded = [presets.load(path) for path in presets.available().values()]
    if json_:
        emit_json(
            [
                {
                    "name": p.name,
                    "path": str(p.path),
                    "system": _system_dict(p),
                    "models": {m: list(stages) for m, stages in p.models.items()},
                }
                for p in loaded
            ]
        )
        return
    table = Table(title="nvlm presets", header_style="bold")
    for column in ("name", "system", "precision", "models"):
        table.add_column(column, no_wrap=column != "system")
    for p in loaded:
        system = f"{p.system.name}, {_devices(p)}"
        table.add_row(p.name, system, p.system.precision, ", ".join(map(canonical, p.models)))
    print_result_table(table)  # stdout: `nvlm presets list | grep a100` works


def _lr(summary: dict[str, Any]) -> str:
    text = presets.fmt_lr(summary["lr"])
    return f"{text} per GPU" if summary["lr_per_gpu"] else text


def _warmup(summary: dict[str, Any]) -> str:
    if summary["warmup_proportion"] is not None:
        return f"{summary['warmup_proportion']:.0%} of steps"
    return f"{summary['warmup_steps']:,} steps"


def _length(summary: dict[str, Any]) -> str:
    if summary["epochs"] is not None:
        return f"{format_value(summary['epochs'])} epochs"
    return f"{summary['steps']:,} steps"


# (row label with its unit, renders a stage summary, only meaningful when the stage trains)
_ROWS = (
    ("GPUs", lambda s: format_value(s["gpus"]), False),
    ("micro-batch (seq)", lambda s: format_value(s["batch_size"]), False),
    ("accumulation", lambda s: format_value(s["accumulation"]), True),
    ("global batch (seq)", lambda s: format_value(s["global_batch"]), False),
    ("learning rate", _lr, True),
    ("effective lr", lambda s: presets.fmt_lr(s["effective_lr"]), True),
    ("warm-up", _warmup, True),
    ("length", _length, True),
    ("seq len (tokens)", lambda s: format_value(s["seq_len"]), False),
    ("model size", lambda s: s["model_size"], False),
    ("precision", lambda s: s["precision"], False),
    ("XLA", lambda s: format_value(s["xla"]), False),
    ("derived", lambda s: format_value(s["derived"]), False),
)
_NOT_TRAINING = ("eval",)  # stages that only run inference: no lr, warm-up or length


@app.command()
def show(name: PresetArg, model: ModelOption = None, json_: JsonFlag = False) -> None:
    """Show a preset's numbers per model and stage.

    Micro-batch, accumulation, GPUs, global batch, learning rate (per GPU or absolute, and the effective one), warm-up, steps or epochs, sequence length, model size, precision, XLA, and whether the numbers were derived rather than published.

    Examples:

        nvlm presets show dgx1-16g-amp --model bert

        nvlm presets show dgx2-amp --model electra --json

        nvlm presets show ./my-cluster.yaml
    """
    preset = presets.load(name)
    models = preset.models
    if model is not None:
        key = model_key(model)
        if key not in models:
            raise UserError(
                f"preset {preset.name} has no model {model!r} (available: {', '.join(models)})"
            )
        models = {key: models[key]}
    summaries = {m: {n: st.summary() for n, st in stages.items()} for m, stages in models.items()}
    if json_:
        emit_json(
            {
                "name": preset.name,
                "path": str(preset.path),
                "system": _system_dict(preset),
                "models": summaries,
            }
        )
        return
    # The preset's numbers are the result (stdout); the footnote is a note (stderr).
    peak = preset.system.peak()
    print_result_table(
        f"[bold]{preset.name}[/bold]: {preset.system.name}, {_devices(preset)}, "
        f"{preset.system.precision}, peak {format_value(peak)} TFLOP/s per device"
    )
    for m, stages in summaries.items():
        table = Table(title=m, header_style="bold", title_justify="left")
        table.add_column("")
        for stage in stages:
            table.add_column(stage, justify="right")
        for label, render, training in _ROWS:
            cells = [
                "-" if training and stage in _NOT_TRAINING else render(summary)
                for stage, summary in stages.items()
            ]
            table.add_row(label, *cells)
        print_result_table(table)
    if any(s["derived"] for stages in summaries.values() for s in stages.values()):
        console().print(
            f"derived = not published for this system and precision; the rule is written "
            f"next to the numbers in {preset.path}"
        )
