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
