"""The BERT model plugin: what `nvlm pretrain|eval|predict|convert --model bert` call.

Registered through the `nvlm.models` entry-point group like any outside plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf

from nvlm.data.examples import ExampleSource, Hdf5Part
from nvlm.data.pretraining.shards import ShardInfo, read_shards
from nvlm.data.vocab import write_tokenizer_config
from nvlm.errors import UserError
from nvlm.models.bert.config import SIZES, BertConfig
from nvlm.models.bert.flops import flops_per_token
from nvlm.plugins.encoder.plugin import EncoderPlugin
from nvlm.run_dir import VOCAB

PRETRAIN_KEYS = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "next_sentence_labels",
)
METRIC_UNITS = {"mlm_loss": "nats", "mlm_acc": "1", "nsp_loss": "nats", "nsp_acc": "1"}


class BertPlugin(EncoderPlugin):
    name: ClassVar[str] = "bert"
    title: ClassVar[str] = "BERT"
    metric_units: ClassVar[dict[str, str]] = METRIC_UNITS
    config_cls: ClassVar[type] = BertConfig
    # "custom": an imported checkpoint whose architecture matches no named size.
    sizes: ClassVar[dict] = {**SIZES, "custom": {}}
    tasks: ClassVar[tuple[str, ...]] = ("pretrain", "mlm", "squad", "classify", "features")
    shard_kind: ClassVar[str] = "bert"

    # -- model ---------------------------------------------------------------------------
    def build(self, cfg, task: str):
        from nvlm.models.bert.build import build

        return build(cfg, task)

    null_threshold: ClassVar[float] = 0.0  # SQuAD v2.0 default (reference BERT scripts)

    def squad_null_threshold(self, cfg) -> float:
        """The run's `model.null_threshold` (a fine-tuned run may carry a tuned one)."""
        return cfg.model.null_threshold

    def flops_per_token(self, cfg, seq_len: int, task: str = "pretrain") -> float:
        fraction = cfg.data.max_predictions / seq_len if task == "pretrain" else 0.0
        return flops_per_token(cfg.model, seq_len, masked_fraction=fraction)

    def text_settings(self, src: str):
        """(vocab.txt path, lowercase) of a checkpoint source."""
        from nvlm.plugins.bert.init import source_text_settings

        return source_text_settings(src)

    # -- data ----------------------------------------------------------------------------
    def data_overrides(self, data: Path) -> tuple[ShardInfo, dict[str, Any]]:
        """What the shards fix in the config: vocab size (padded to 8), seq len, predictions.
        Every shard is checked against the manifest here, before a run directory exists."""
        info = read_shards(data, expect_kind=self.shard_kind)
        info.check()
        from nvlm.models.bert.config import pad_vocab

        values = {"model.vocab_size": pad_vocab(info.vocab_size), "data.seq_len": info.seq_len}
        if info.max_predictions is not None:
            values["data.max_predictions"] = info.max_predictions
        return info, values

    def source(self, cfg, data: Path, keys=PRETRAIN_KEYS, world=None) -> ExampleSource:
        info = read_shards(data, expect_kind=self.shard_kind)
        if cfg.data.verify == "full":
            info.check(full=True, world=world)
        return ExampleSource(
            info.parts(keys), seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer
        )

    # -- training --------------------------------------------------------------------------
    def loss_counts(self, cfg, model, task: str):
        from nvlm.models.bert.pretraining_losses import prediction_counts

        return prediction_counts

    def loss_fn(self, cfg, task: str):
        from nvlm.models.bert.pretraining_losses import prediction_counts, pretraining_losses
        from nvlm.train.losses import Term

        def pretrain_loss(model, batch, training):
            outputs = model(
                {
                    k: batch[k]
                    for k in ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")
                },
                training=training,
            )
            out = pretraining_losses(outputs, batch)
            # Sums over the masked tokens and the sequences: the trainer divides them by the
            # step's counts (train.loss_normalization) and logs mlm_loss / nsp_loss.
            counts = prediction_counts(batch)
            terms = {
                "mlm_loss": Term(out["mlm_total"], counts["mlm_loss"]),
                "nsp_loss": Term(out["nsp_total"], counts["nsp_loss"]),
            }
            return terms, {"mlm_acc": out["mlm_accuracy"], "nsp_acc": out["nsp_accuracy"]}

        if task == "pretrain":
            return pretrain_loss
        raise UserError(f"BERT cannot train task {task!r} here (use nvlm finetune for squad)")

    def pretrain_batches(self, cfg, data: Path, world):
        src = self.source(cfg, data, world=world)

        def batches(start: int):
            # Shards -> tf.data (prefetching) from the saved global position, int32 on device.
            return src.prefetched_batches(
                start,
                cfg.train.batch_size,
                rank=world.rank,
                world=world.size,
                dtypes={k: tf.int32 for k in PRETRAIN_KEYS},
            )

        return batches

    def write_assets(self, cfg, run: Path, data: Path, init: str | None, task: str) -> None:
        """Copy the vocab next to the run so that it is self-contained for --init later."""
        from nvlm.train.run import copy_file

        if task in ("squad", "classify"):  # the vocab and casing of the checkpoint being fine-tuned
            vocab, lowercase = self.text_settings(init)
            if vocab:
                copy_file(Path(vocab), Path(run) / VOCAB)
            write_tokenizer_config(Path(run), lowercase)
            return
        info = read_shards(data, expect_kind=self.shard_kind)
        if info.vocab_path and Path(info.vocab_path).exists():
            copy_file(Path(info.vocab_path), Path(run) / VOCAB)
        write_tokenizer_config(Path(run), info.lowercase)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate_mlm(self, cfg, model, data: Path, progress=None, world=None) -> dict[str, Any]:
        """Masked-LM loss/accuracy and NSP accuracy over every example of the shards, once
        (dealt out over the ranks of `world`, when given)."""
        from nvlm.models.bert.pretraining_losses import pretraining_losses
        from nvlm.models.encoder.shard_eval import sum_over_parts

        info = read_shards(data, expect_kind=self.shard_kind)
        parts = [Hdf5Part(p, PRETRAIN_KEYS) for p in info.shard_paths]
        inputs = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")

        @tf.function(reduce_retracing=True, jit_compile=bool(cfg.train.xla))
        def step(batch):
            out = pretraining_losses(model({k: batch[k] for k in inputs}, training=False), batch)
            n = tf.cast(tf.shape(batch["input_ids"])[0], tf.float32)
            return {
                "mlm_xent": out["mlm_loss"] * out["mlm_count"],
                "mlm_hits": out["mlm_accuracy"] * out["mlm_count"],
                "mlm_count": out["mlm_count"],
                "nsp_xent": out["nsp_loss"] * n,
                "nsp_hits": out["nsp_accuracy"] * n,
                "sequences": n,
            }

        keys = ("mlm_xent", "mlm_hits", "mlm_count", "nsp_xent", "nsp_hits", "sequences")
        totals, elapsed = sum_over_parts(
            step, parts, cfg.data.eval_batch_size, info.examples, progress, world=world, keys=keys
        )
        count, n = max(totals["mlm_count"], 1.0), max(totals["sequences"], 1.0)
        return {
            "task": "mlm",
            "data": str(data),
            "sequences": int(totals["sequences"]),
            "masked_tokens": int(totals["mlm_count"]),
            "mlm_loss": totals["mlm_xent"] / count,
            "mlm_acc": totals["mlm_hits"] / count,
            "nsp_loss": totals["nsp_xent"] / n,
            "nsp_acc": totals["nsp_hits"] / n,
            "time_s": elapsed,
            "seq_per_s": n / max(elapsed, 1e-9),
        }

    # -- checkpoints ---------------------------------------------------------------------
    def convert(self, src, dst, *, to: str, overwrite: bool = False, sets=()):
        from nvlm.plugins.bert import interchange

        if to == "hf":
            return interchange.to_hf(src, dst, overwrite=overwrite)
        return interchange.to_nvlm(src, dst, overwrite=overwrite, sets=sets)

    def init_model_values(self, src: str) -> dict[str, Any]:
        """The architecture `--init SRC` fixes, as dotted config keys."""
        from nvlm.plugins.bert.init import init_model_values

        return init_model_values(src)

    def load_init(self, model, cfg, src: str, task: str) -> list[str]:
        """Load weights from `--init SRC` into `model`; return warnings (e.g. absent heads)."""
        from nvlm.plugins.bert.init import load_into

        return load_into(model, cfg, src, task)

    def masked_lm_logits(self, model, inputs: dict):
        """The pretraining masked-LM head's logits at `masked_lm_positions` (fill-mask)."""
        return model(inputs, training=False)["mlm_logits"]
