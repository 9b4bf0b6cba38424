"""Options shared by several commands, defined once (Annotated aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the machine-readable result as JSON on stdout.")
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config key, e.g. --set train.lr=1e-4 (repeatable)."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file of config overrides (same keys as --set)."),
]
