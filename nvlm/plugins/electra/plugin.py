"""The ELECTRA model plugin: what `nvlm pretrain|finetune|eval|predict|convert --model electra`
call. Registered through the `nvlm.models` entry-point group like any outside plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nvlm.data.pretraining.shards import ShardInfo, read_shards
from nvlm.errors import UserError
from nvlm.models.electra.config import SIZES, ElectraConfig
from nvlm.plugins.encoder.plugin import EncoderPlugin
from nvlm.run_dir import HF_EXPORT, VOCAB

SHARD_KEYS = ("input_ids", "input_mask", "segment_ids")
# Metrics of a pretraining step (see pretraining_losses), with units.
METRIC_UNITS = {
    "gen_loss": "nats",
    "gen_acc": "1",
    "disc_loss": "nats",
    "disc_acc": "1",
    "disc_precision": "1",
    "disc_recall": "1",
    "sampled_eq_original": "1",
    "disc_baseline_acc": "1",
}


class ElectraPlugin(EncoderPlugin):
    name: ClassVar[str] = "electra"
    title: ClassVar[str] = "ELECTRA"
    metric_units: ClassVar[dict[str, str]] = METRIC_UNITS
    config_cls: ClassVar[type] = ElectraConfig
    sizes: ClassVar[dict] = {**SIZES, "custom": {}}
    # "features" is the encoder a source holds (a pair or a run: the discriminator); --part
    # chooses one ("features:PART").
    tasks: ClassVar[tuple[str, ...]] = ("pretrain", "mlm", "squad", "classify", "features")
    encoder_parts: ClassVar[tuple[str, ...]] = ("discriminator", "generator")
    shard_kind: ClassVar[str] = "electra"
    tokenizer_class: ClassVar[str] = "ElectraTokenizer"
    # SQuAD v2.0 default of the joint head: NVIDIA's calibrated null score threshold (E2
    # squad_config.sh). The simple head uses BERT's 0.0 (see squad_head).
    null_threshold: ClassVar[float] = -5.6

    # -- model ---------------------------------------------------------------------------
    def build(self, cfg, task: str):
        from nvlm.models.electra.build import build

        if task == "features:generator":  # the generator encoder alone, at its own sizes
            from nvlm.models.electra.electra_backbone import ElectraBackbone

            return ElectraBackbone(**cfg.model.backbone_kwargs("generator"), name="generator")
        return build(cfg, "features" if task == "features:discriminator" else task)

    def flops_per_token(self, cfg, seq_len: int, task: str = "pretrain") -> float:
        from nvlm.models.electra.flops import flops_per_token

        return flops_per_token(
            cfg.model, seq_len, masked_fraction=cfg.data.max_predictions / seq_len, task=task
        )

    def text_settings(self, src: str):
        from nvlm.plugins.electra.init import source_text_settings

        return source_text_settings(src)

    # -- SQuAD hooks (nvlm.tasks.squad) -----------------------------------------------------
    def squad_head(self, cfg):
        """The joint head's loss and decoder, or None for the simple head (BERT's)."""
        if cfg.model.qa_head != "joint":
            return None
        from nvlm.plugins.electra.joint_squad import JointSquad

        return JointSquad(cfg)

    def squad_null_threshold(self, cfg) -> float:
        return cfg.model.null_threshold if cfg.model.qa_head == "joint" else 0.0

    # -- data ----------------------------------------------------------------------------
    def data_overrides(self, data: Path) -> tuple[ShardInfo, dict[str, Any]]:
        """What the shards fix: vocab size (padded to 8, as NVIDIA's recipe), seq len, and the
        ids of [MASK] / [CLS] / [SEP] in their vocab."""
        from nvlm.models.encoder.config import pad_vocab
        from nvlm.plugins.electra.init import special_ids

        info = read_shards(data, expect_kind=self.shard_kind)
        info.check()  # every shard against the manifest, before a run directory exists
        values = {"model.vocab_size": pad_vocab(info.vocab_size), "data.seq_len": info.seq_len}
        if info.vocab_path and Path(info.vocab_path).exists():
            values.update(special_ids(Path(info.vocab_path)))
        return info, values

    def _parts(self, data: Path, verify: str = "size", world=None):
        info = read_shards(data, expect_kind=self.shard_kind)
        if verify == "full":
            info.check(full=True, world=world)
        return info, info.parts(SHARD_KEYS)

    # -- training --------------------------------------------------------------------------
    def loss_fn(self, cfg, task: str):
        from nvlm.models.electra.pretraining_losses import pretraining_losses
        from nvlm.train.losses import Term

        if task != "pretrain":
            raise UserError(f"ELECTRA cannot train task {task!r} here (nvlm finetune: squad)")
        weights = dict(
            generator_weight=cfg.model.generator_weight,
            discriminator_weight=cfg.model.discriminator_weight,
        )

        def pretrain_loss(model, batch, training):
            out = pretraining_losses(model(batch, training=training), **weights)
            # Sums over the selected tokens and the real tokens: the trainer divides them by
            # the step's counts (train.loss_normalization) and logs gen_loss / disc_loss.
            terms = {
                "gen_loss": Term(out["gen_total"], out["mlm_count"], weights["generator_weight"]),
                "disc_loss": Term(
                    out["disc_total"], out["token_count"], weights["discriminator_weight"]
                ),
            }
            metrics = {k: out[k] for k in METRIC_UNITS if k not in terms}
            return terms, metrics

        return pretrain_loss

    def loss_counts(self, cfg, model, task: str):
        """The generator's selected tokens (a function of each sequence's length, drawn or
        not) and the discriminator's real tokens of a batch."""
        import tensorflow as tf

        from nvlm.models.electra.replaced_tokens import selection_counts

        def counts(batch):
            selected = selection_counts(
                batch["input_ids"], batch["input_mask"], max_predictions=model.max_predictions,
                mask_prob=model.mask_prob, excluded_ids=model.special_ids,
            )  # fmt: skip
            return {
                "gen_loss": tf.cast(tf.reduce_sum(selected), tf.float32),
                "disc_loss": tf.reduce_sum(tf.cast(batch["input_mask"], tf.float32)),
            }

        return counts

    def pretrain_batches(self, cfg, data: Path, world):
        import tensorflow as tf

        from nvlm.data.examples import ExampleSource

        _, parts = self._parts(data, cfg.data.verify, world)
        src = ExampleSource(parts, seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer)

        def batches(start: int):
            # example_positions (int64) key each example's masks and samples in the
            # pretrainer: the same whatever the ranks and micro-batches (ElectraPretrainer).
            for b in src.micro_batches(
                start, cfg.train.batch_size, rank=world.rank, world=world.size, positions=True
            ):
                yield {
                    k: tf.constant(v if k == "example_positions" else v.astype(np.int32))
                    for k, v in b.items()
                }

        return batches

    def write_assets(self, cfg, run: Path, data: Path, init: str | None, task: str) -> None:
        """Copy the vocab (and casing) next to the run so that it is a self-contained --init."""
        from nvlm.data.vocab import write_tokenizer_config
        from nvlm.train.run import copy_file

        if task in ("squad", "classify"):
            vocab, lowercase = self.text_settings(init)
        else:
            info = read_shards(data, expect_kind=self.shard_kind)
            vocab, lowercase = info.vocab_path, info.lowercase
        if vocab and Path(vocab).exists():
            copy_file(Path(vocab), Path(run) / VOCAB)
        write_tokenizer_config(Path(run), lowercase)

    def finish_run(self, cfg, model, run: Path, task: str) -> list[str]:
        """After a complete pretraining run: RUN/hf/discriminator and RUN/hf/generator."""
        if task != "pretrain":
            return []
        from nvlm.plugins.electra.interchange import export_run_model

        out = []
        for part in ("discriminator", "generator"):
            out += export_run_model(model, cfg, Path(run), Path(run) / HF_EXPORT / part, part)[1]
        return out

    # -- evaluation ----------------------------------------------------------------------
    def evaluate_mlm(self, cfg, model, data: Path, progress=None, world=None) -> dict[str, Any]:
        """Replaced token detection over every sequence of the shards, once (fresh random
        masks, keyed by each sequence's index in the set: see rtd_eval)."""
        from nvlm.models.electra.rtd_eval import evaluate_rtd

        info, parts = self._parts(data)
        return evaluate_rtd(cfg, model, parts, info.examples, data, progress=progress, world=world)

    # -- checkpoints ---------------------------------------------------------------------
    def convert(self, src, dst, *, to: str, overwrite: bool = False, part: str | None = None,
                sets=()):  # fmt: skip
        from nvlm.plugins.electra import interchange

        if to == "hf":
            return interchange.to_hf(src, dst, part=part, overwrite=overwrite)
        if part is not None:
            raise UserError("--part applies to --to hf only")
        return interchange.to_nvlm(src, dst, overwrite=overwrite, sets=sets)

    def init_model_values(self, src: str) -> dict[str, Any]:
        from nvlm.plugins.electra.init import init_model_values

        return init_model_values(src)

    def load_init(self, model, cfg, src: str, task: str) -> list[str]:
        from nvlm.plugins.electra.init import load_into

        return load_into(model, cfg, src, task)

    def masked_lm_logits(self, model, inputs: dict):
        """The GENERATOR's logits (the discriminator has no masked-LM head) at
        `masked_lm_positions`, without the pretraining step's masking and sampling."""
        return model.generator_logits(inputs)
