"""`nvlm doctor`: versions, Horovod's build, devices and launchers (library: nvlm.launch.environment)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from nvlm.cli.options import JsonFlag


def doctor(json_out: JsonFlag = False) -> None:
    """Check this machine for training: TensorFlow, Keras, Horovod (controllers and operations), GPUs, and the launchers (horovodrun, mpirun, srun). Run it first on a new cluster.

    The table goes to stdout, advice to stderr.

    Examples:

        nvlm doctor

        nvlm doctor --json
    """
    from nvlm.launch.environment import report
    from nvlm.report import console, emit_json, print_result_table

    info = report()
    if json_out:
        emit_json(info)
        return
    print_result_table(_table(info))  # the findings: stdout; the advice below: stderr
    for line in _advice(info):
        console().print(line)


def _yes(flag: bool) -> str:
    return "[green]yes[/green]" if flag else "[red]no[/red]"


def _table(info: dict[str, Any]) -> Table:
    table = Table(title="nvlm doctor", header_style="bold", show_header=True)
    table.add_column("component")
    table.add_column("status")
    table.add_row("nvlm", info["nvlm"])
    table.add_row("Python", f"{info['python']} ({info['platform']})")
    tf = info["tensorflow"]
    table.add_row("TensorFlow", f"{tf['version']}" + (" (CUDA build)" if tf["cuda_built"] else ""))
    table.add_row("Keras", info["keras"]["version"])
    hvd = info["horovod"]
    if hvd["installed"]:
        table.add_row("Horovod", hvd["version"])
        for name, built in hvd["controllers"].items():
            table.add_row(
                f"  controller {name.upper() if name == 'mpi' else name.title()}", _yes(built)
            )
        for name, built in hvd["operations"].items():
            table.add_row(f"  operations {name.upper()}", _yes(built))
    else:
        table.add_row("Horovod", f"[red]not usable[/red]: {hvd['error']}")
    devices = info["devices"]
    table.add_row("GPUs visible", ", ".join(devices["gpus"]) or "none (CPU workers)")
    table.add_row("CPU cores", f"{devices['cpu_cores']} usable of {devices['cpu_count']}")
    for name, launcher in info["launchers"].items():
        if launcher["available"]:
            detail = launcher["path"] + (f" ({launcher['version']})" if launcher["version"] else "")
            table.add_row(f"launcher {name}", f"[green]yes[/green] {detail}")
        else:
            table.add_row(f"launcher {name}", "[red]no[/red]")
    table.add_row("Slurm allocation", info["slurm_job"] or "no")
    table.add_row("--launcher auto picks", info["auto_launcher"] or "[red]nothing[/red]")
    return table


def _advice(info: dict[str, Any]) -> list[str]:
    hvd = info["horovod"]
    lines = []
    if not hvd["installed"]:
        lines.append(
            "Horovod is missing: nvlm trains in one process only (build it: make horovod)."
        )
    elif info["auto_launcher"] is None:
        lines.append("No usable launcher: install Open MPI (mpirun) or Horovod's horovodrun.")
    if hvd.get("installed") and info["devices"]["gpus"] and not hvd["operations"]["nccl"]:
        lines.append("GPUs but no NCCL in Horovod: rebuild with HOROVOD_GPU_OPERATIONS=NCCL.")
    if not info["devices"]["gpus"]:
        lines.append(
            "No GPU: --gpus N starts N CPU worker processes, each with its share of the cores."
        )
    return lines
