"""`nvlm benchmark`: measured figures of this machine (library: nvlm.bench).

`train` and `infer` time the three models in the layouts of NVIDIA's published tables; `peak`
measures the dense matmul peak that every MFU nvlm prints is divided by. One module per
command; this one makes the group.
"""

from __future__ import annotations

import typer

from nvlm.cli.benchmark import infer, peak, train, train_rank

app = typer.Typer(
    no_args_is_help=True,
    help="Measure this machine: training and inference throughput and latency of the three "
    "models, in the layouts of NVIDIA's published tables, and its dense matmul peak.",
)
app.command("peak")(peak.peak)
app.command("train")(train.train)
app.command("infer")(infer.infer)
app.command("train-rank", hidden=True)(train_rank.train_rank)
