"""Training progress (rank 0 only), for people and for batch logs.

- stderr is a terminal: a rich bar whose first line keeps step/total and ETA visible at any
  width, with the latest figures on a second line (wrapped, never cut to `s…`);
- stderr is a file or a pipe (Slurm .out files, `2> log`): one plain line per log interval,
  flushed at once, so `tail -f` shows a run while it trains;
- either way the plain lines also go to RUN/logs/run.log (`nvlm.report.log_to`).
"""

from __future__ import annotations

import time
from datetime import timedelta

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from nvlm.report import console, plain_line

# Figures shown, in this order, when the model reports them: (key, label, format).
SHOWN = (
    ("loss", "loss", ",.4g"),
    ("mlm_loss", "mlm_loss", ",.4g"),
    ("mlm_acc", "mlm_acc", ",.4g"),
    ("nsp_acc", "nsp_acc", ",.4g"),
    ("disc_acc", "disc_acc", ",.4g"),
    ("ppl", "ppl", ",.4g"),
    ("lr", "lr", ".2e"),
    ("loss_scale", "loss_scale", ",.4g"),
    ("seq_per_s", "seq/s", ",.4g"),
    ("tok_per_s", "tok/s", ",.0f"),
)


def format_figures(figures: dict[str, float]) -> str:
    return "  ".join(f"{label} {figures[k]:{fmt}}" for k, label, fmt in SHOWN if k in figures)


class _TwoLines(RichProgress):
    """The bar on one line, the figures below it (an 80-column terminal keeps both)."""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            if task.fields.get("figures"):
                yield Text("  " + task.fields["figures"], style="dim")


class Progress:
    def __init__(self, total: int, start: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self.start = start
        self.t0 = time.monotonic()
        self.bar = None
        if not enabled:
            return
        if console().is_terminal:
            self.bar = _TwoLines(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(bar_width=None),
                TimeRemainingColumn(),
                console=console(),
                transient=False,
                refresh_per_second=4,
                expand=False,
            )
            self.task = self.bar.add_task("train", total=total, completed=start, figures="")
            self.bar.start()

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def update(self, step: int, figures: dict[str, float]) -> None:
        if not self.enabled:
            return
        text = format_figures(figures)
        if self.bar is not None:
            self.bar.update(self.task, completed=step, figures=text)
        elapsed = time.monotonic() - self.t0
        done = step - self.start
        eta = elapsed / done * (self.total - step) if done > 0 else None
        line = (
            f"step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)  {text}  "
            f"elapsed {_clock(elapsed)}  ETA {_clock(eta)}"
        )
        plain_line(line, to_console=self.bar is None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    return str(timedelta(seconds=round(seconds)))
