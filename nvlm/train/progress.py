"""Rich progress on stderr (rank 0 only): step/total, the latest logged figures, ETA."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from nvlm.report import console

# Figures shown in the bar, in this order, when the model reports them.
SHOWN = (
    "loss",
    "mlm_loss",
    "mlm_acc",
    "nsp_acc",
    "disc_acc",
    "ppl",
    "lr",
    "loss_scale",
    "seq_per_s",
    "tok_per_s",
)


class Progress:
    def __init__(self, total: int, start: int, *, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        self.bar = RichProgress(
            TextColumn("[bold]step"),
            MofNCompleteColumn(),
            BarColumn(bar_width=24),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=console(),
            transient=False,
            refresh_per_second=4,
        )
        self.task = self.bar.add_task("train", total=total, completed=start, figures="")
        self.bar.start()

    def advance(self, step: int) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=step)

    def update(self, step: int, figures: dict[str, float]) -> None:
        if not self.enabled:
            return
        parts = []
        for k in SHOWN:
            if k in figures:
                v = figures[k]
                parts.append(f"{k} {v:.2e}" if k == "lr" else f"{k} {v:,.4g}")
        self.bar.update(self.task, completed=step, figures="  ".join(parts))

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
