"""`PipelineProgress`: rich progress on stderr for `nvlm data pretraining` (rates with units)."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from nvlm.report import console


class PipelineProgress:
    """Documents tokenized (the bar), documents/s, tokens/s, instances and shards written.

    Used as a context manager; every method is cheap enough to call once per batch.
    """

    def __init__(self, total_documents: int, total_shards: int) -> None:
        self.documents = 0
        self.tokens = 0
        self.instances = 0
        self.shards = 0
        self.total_shards = total_shards
        self._start = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} docs"),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            console=console(),
            transient=False,
        )
        self._task = self._progress.add_task("tokenizing", total=total_documents, rates="")

    def __enter__(self) -> PipelineProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def on_tokens(self, documents: int, sentences: int, tokens: int) -> None:
        self.documents += documents
        self.tokens += tokens
        self._refresh()

    def on_instances(self, instances: int) -> None:
        self.instances += instances
        self._refresh()

    def on_shard(self, record: dict) -> None:
        self.shards += 1
        self._refresh()

    def _refresh(self) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rates = (
            f"{self.documents / elapsed:,.0f} docs/s  {self.tokens / elapsed:,.0f} tokens/s  "
            f"{self.instances:,} instances  {self.shards}/{self.total_shards} shards"
        )
        description = "tokenizing" if self.instances == 0 else "building"
        self._progress.update(
            self._task, completed=self.documents, rates=rates, description=description
        )
