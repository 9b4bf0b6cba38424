"""What the BERT and ELECTRA plugins share: SQuAD through `nvlm.tasks.squad`, classification
through `nvlm.tasks.classify`, the pretraining `TrainSpec`, and which evaluation a task gets."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

from nvlm.errors import UserError
from nvlm.registry import ModelPlugin

SAMPLE_ROWS = 4096  # rows of the first shard whose real lengths stand for the data's


class EncoderPlugin(ModelPlugin):
    """Base of `BertPlugin` and `ElectraPlugin`. A subclass names itself in `title` (for error
    messages), gives its pretraining metrics' units, and implements `pretrain_batches`,
    `loss_fn`, `loss_counts`, `flops_per_token` and `evaluate_mlm`."""

    title: ClassVar[str]
    metric_units: ClassVar[dict[str, str]]
    serving_tasks: ClassVar[tuple[str, ...]] = ("features", "squad", "classify")
    tokenizer_class: ClassVar[str] = "BertTokenizer"  # tokenizer_config.json of exports

    @abc.abstractmethod
    def pretrain_batches(self, cfg, data: Path, world):
        """`start -> iterator of batches` from the global position `start` (this rank's part)."""

    @abc.abstractmethod
    def loss_counts(self, cfg, model, task: str):
        """`batch -> {term: targets}`: the counts of `loss_fn`'s terms, before the forward."""

    @abc.abstractmethod
    def evaluate_mlm(self, cfg, model, data: Path, progress=None, world=None) -> dict[str, Any]:
        """Pretraining figures (masked-LM, NSP or replaced-token) over every sequence, once;
        with `world`, each rank evaluates its share and every rank gets the whole set's."""

    def train_spec(self, cfg, model, data: Path, task: str, world, *, run=None, init=None):
        from nvlm.train.trainer import TrainSpec, sequence_flops

        if task == "squad":
            from nvlm.tasks.squad import task as squad

            return squad.train_spec(self, cfg, model, data, run, init, world)
        if task == "classify":
            from nvlm.tasks.classify import task as classify

            return classify.train_spec(self, cfg, model, data, init=init, world=world)
        batches = self.pretrain_batches(cfg, data, world)
        seq = cfg.data.seq_len
        spec = TrainSpec(
            model=model,
            loss_fn=self.loss_fn(cfg, task),
            counts=self.loss_counts(cfg, model, task),
            batches=batches,
            tokens_per_example=seq,
            flops_per_example=sequence_flops(
                lambda n: self.flops_per_token(cfg, n), _real_lengths(data)
            ),
            metric_units=self.metric_units,
        )
        return self._with_held_out_shards(cfg, model, spec, world)

    def _with_held_out_shards(self, cfg, model, spec, world):
        """`spec` evaluating the held-out shards `data.eval_data` (`nvlm pretrain --eval-data`)
        every `train.eval_every` steps and after the last one: the figures `nvlm eval --task
        mlm` gives, logged as eval_*. Nothing of the training state is drawn from or changed:
        the model runs without dropout, and ELECTRA's evaluation masks are keyed by each
        held-out sequence's index (nvlm.models.electra.rtd_eval), not by its seed generator."""
        import dataclasses

        if cfg.data.eval_data is None:
            return spec
        data = Path(cfg.data.eval_data)

        def held_out() -> dict[str, float]:
            # train.eval_shared: every rank evaluates its share (the trainer calls this on
            # every rank), else rank 0 evaluates the whole set.
            result = self.evaluate_mlm(cfg, model, data, world=shared_world)
            return {k: float(result[k]) for k in self.metric_units if k in result}

        shared_world = world if cfg.train.eval_shared and world.size > 1 else None
        every = cfg.train.eval_every or spec.total_steps or cfg.train.steps
        return dataclasses.replace(
            spec, evaluate=held_out, eval_every=every, eval_units=dict(self.metric_units),
            eval_shared=shared_world is not None,
        )  # fmt: skip

    def evaluate(
        self,
        cfg,
        model,
        data: Path,
        task: str,
        *,
        init: str | None = None,
        out_dir: Path | None = None,
        null_threshold: float | None = None,
        progress=None,
    ) -> dict[str, Any]:
        """squad: predictions files + EM/F1 + inference timing (nvlm.tasks.squad). classify:
        GLUE or classification/regression metrics + timing (nvlm.tasks.classify). mlm: the
        model's pretraining figures over every sequence of the shards, once."""
        if task == "squad":
            from nvlm.tasks.squad import task as squad

            return squad.evaluate(
                self, cfg, model, data, init=init, out_dir=out_dir, null_threshold=null_threshold
            )
        if task == "classify":
            from nvlm.tasks.classify import task as classify

            return classify.evaluate(self, cfg, model, data, init=init)
        if task != "mlm":
            raise UserError(f"{self.title} evaluates tasks mlm, squad and classify, not {task!r}")
        return self.evaluate_mlm(cfg, model, data, progress=progress)

    # -- serving (nvlm convert --to savedmodel) ----------------------------------------------
    def serving_signature(self, cfg, model, task: str, *, batch_size, seq_len: int):
        """input_ids/input_mask/segment_ids -> the head's outputs (nvlm.plugins.encoder.serving)."""
        from nvlm.plugins.encoder.serving import encoder_signature

        if seq_len > cfg.model.max_position:
            raise UserError(
                f"sequence length {seq_len} (--seq-len, default the run's data.seq_len) is "
                f"longer than the {self.title} model's max_position {cfg.model.max_position} "
                f"(pass --seq-len {cfg.model.max_position} or less)"
            )
        classifier = task == "classify" and cfg.model.num_labels > 1  # 1: regression
        return encoder_signature(
            model, batch_size=batch_size, seq_len=seq_len, probabilities=classifier
        )

    def write_serving_assets(self, cfg, src: str, directory: Path) -> list[str]:
        """vocab.txt and the tokenizer files of the run's vocab and casing."""
        from nvlm.plugins.encoder.serving import write_encoder_assets

        return write_encoder_assets(self, cfg, src, directory, self.tokenizer_class)


def _real_lengths(data: Path):
    """Real (unpadded) lengths of a sample of the shards' sequences, for MFU."""
    from nvlm.data.pretraining.shards import read_shards

    part = read_shards(data).parts(("input_mask",))[0]
    rows = part.read(0, min(len(part), SAMPLE_ROWS))["input_mask"]
    return rows.astype(bool).sum(axis=1)
