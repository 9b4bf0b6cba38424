"""Options shared by several commands, defined once (Annotated aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def installed_models() -> str:
    """The model names of the installed plugins (entry points: no plugin is imported)."""
    from importlib.metadata import entry_points

    from nvlm.registry import GROUP, canonical

    return " | ".join(sorted({canonical(ep.name) for ep in entry_points(group=GROUP)}))


ModelOption = Annotated[
    str, typer.Option("--model", "-m", help=f"The model: {installed_models()} (installed plugins).")
]
# Commands that load a model (eval, finetune): --init says which model it is, --model may confirm.
OptionalModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help=f"The model: {installed_models()}. Default: what --init is (an nvlm run's "
        "config.yaml, a Hugging Face config.json's model_type; a Google TF1 checkpoint is bert).",
    ),
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the machine-readable result as JSON on stdout.")
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config key, e.g. --set train.lr=1e-4 (repeatable)."),
]
# -- where and how the training commands run (nvlm.launch.training) -----------------------------
GpusOption = Annotated[
    int | None,
    typer.Option(
        "--gpus",
        help="Data-parallel processes (default: the preset's GPU count; one "
        "CPU process each on a machine without GPUs). The global batch is kept by "
        "re-deriving accumulation.",
    ),
]
LauncherOption = Annotated[
    str,
    typer.Option(
        "--launcher",
        help="auto | horovodrun | mpirun | srun | none. auto: srun in a "
        "Slurm allocation, else horovodrun, else mpirun; none: this process only.",
    ),
]
HostsOption = Annotated[
    str | None,
    typer.Option(
        "--hosts",
        help="Hosts and their slots, e.g. node1:8,node2:8 (default: this "
        "machine, or the Slurm allocation).",
    ),
]
HostfileOption = Annotated[
    Path | None,
    typer.Option("--hostfile", help="File of 'host slots=N' lines (instead of --hosts)."),
]
ControllerOption = Annotated[
    str,
    typer.Option(
        "--controller",
        help="horovodrun's controller: auto, gloo or mpi (auto = gloo, which needs no MPI).",
    ),
]
DryRunFlag = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the launcher command and exit, starting nothing."),
]


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file of config overrides (same keys as --set)."),
]


# -- options of several commands (eval, predict, finetune, pretrain): one spelling, one help ----
# An option is required where the command gives it no default (`init: InitOption`), optional
# with one (`init: InitOption = None`).
InitOption = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="An nvlm run or checkpoint, a Hugging Face directory or a Google TF1 checkpoint prefix.",
    ),
]
DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        help="The data: shards (nvlm data pretraining), a SQuAD JSON (--task squad), or an "
        "nvlm data lm directory or text file (transformer-xl).",
    ),
]
RunDir = Annotated[Path, typer.Option("--out", "-o", help="Run directory (created or resumed).")]
PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="Hardware preset (nvlm presets list) or a YAML path."),
]
PrecisionOption = Annotated[
    str | None, typer.Option("--precision", help="fp32 | tf32 | amp | bf16")
]
XlaOption = Annotated[
    bool | None, typer.Option("--xla/--no-xla", help="XLA-compile the forward/backward step.")
]
ResumeFlag = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume", help="Resume from RUN's latest checkpoint when there is one."
    ),
]
OverwriteFlag = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Start over: clear what nvlm wrote in RUN (a directory that is not an nvlm run "
        "is refused, nothing in it touched).",
    ),
]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Inputs per forward pass.")
]
# -- SQuAD ---------------------------------------------------------------------------------------
SquadVersionOption = Annotated[
    str | None,
    typer.Option(
        "--version", help="SQuAD version of --data: 1.1, or 2.0 (with unanswerable questions)."
    ),
]
BeamSizeOption = Annotated[
    int | None,
    typer.Option(
        "--beam-size",
        help="squad, joint answer heads (electra): start and end positions kept (default 4).",
    ),
]
NullThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--null-threshold",
        help="squad v2.0: answer 'no answer' when null score - best span score exceeds this "
        "(BERT default 0.0).",
    ),
]


def _flags_without_type() -> None:
    """Typer 0.29 shows `<bool>` as the value of every flag (`--json <bool>`), as if it took
    one; a flag takes none, so its help row shows no type (the one place for every command,
    --help included)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_bool_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_without_type()
