"""The Transformer-XL plugin: what `nvlm pretrain|eval|predict --model transformer-xl` call.

    nvlm data lm --train wiki.train.tokens --valid wiki.valid.tokens --test wiki.test.tokens --out wt103
    nvlm pretrain --model transformer-xl --preset dgxa100-amp --data wt103 --out runs/txl
    nvlm eval --model transformer-xl --task lm --init runs/txl --data wt103 --split test
    nvlm predict --model transformer-xl --init runs/txl --text "The game was" --next 5

Registered through the `nvlm.models` entry-point group like any outside plugin. Training is
the shared loop (nvlm.train.trainer) with the segment memories as extra checkpointed state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from nvlm.errors import UserError
from nvlm.models.transformer_xl.config import SIZES, TransformerXLConfig
from nvlm.registry import ModelPlugin
from nvlm.run_dir import VOCAB

METRIC_UNITS = {"ppl": "1", "bpt": "bits/token", "bpc": "bits/character"}


class TransformerXLPlugin(ModelPlugin):
    name: ClassVar[str] = "transformer-xl"
    config_cls: ClassVar[type] = TransformerXLConfig
    sizes: ClassVar[dict] = {**SIZES, "custom": {}}
    # "pretrain": language-model training (nvlm pretrain); "lm": evaluation and prediction.
    tasks: ClassVar[tuple[str, ...]] = ("pretrain", "lm")
    train_stage: ClassVar[str] = "train"  # the preset stage of `nvlm pretrain` (no phases)
    eval_stage: ClassVar[str] = "eval"
    serving_tasks: ClassVar[tuple[str, ...]] = ("lm",)

    # -- model ---------------------------------------------------------------------------
    def build(self, cfg, task: str):
        from nvlm.models.transformer_xl.transformer_xl import TransformerXL

        if task not in self.tasks:
            raise UserError(f"Transformer-XL has no task {task!r} (tasks: {', '.join(self.tasks)})")
        model = TransformerXL(**cfg.model.to_model_kwargs())
        # Static shapes in the softmax under XLA (see AdaptiveSoftmax.dense_tails).
        model.softmax.dense_tails = bool(cfg.train.xla)
        return model

    def flops_per_token(self, cfg, seq_len: int, task: str = "pretrain", tail_fractions=None):
        from nvlm.models.transformer_xl.flops import flops_per_token

        return flops_per_token(
            cfg.model, seq_len, cfg.model.mem_len, tail_fractions=tail_fractions,
            training=task == "pretrain",
        )  # fmt: skip

    def text_settings(self, src: str):
        """(vocab.txt path, lowercase) of a checkpoint source (words keep their case)."""
        from nvlm.plugins.transformer_xl.init import source_vocab

        return source_vocab(src), False

    # -- data ----------------------------------------------------------------------------
    def data_overrides(self, data: Path):
        """What an `nvlm data lm` directory fixes: the vocabulary size (any batch/length). The
        training split is checked against the manifest here, before a run directory exists."""
        from nvlm.data.lm.corpus import read_lm_directory

        lm = read_lm_directory(Path(data))
        lm.check(("train",))
        return lm, {"model.vocab_size": lm.vocab_size}

    def check_vocab(self, lm, init: str) -> None:
        """The corpus must be tokenized with the vocabulary of the checkpoint."""
        from nvlm.data.checksum import sha256_file
        from nvlm.plugins.transformer_xl.init import source_vocab

        vocab = source_vocab(init)
        if sha256_file(vocab) != lm.vocab_sha256:
            raise UserError(
                f"{lm.directory} was built with another vocabulary than --init {init} "
                f"(rebuild it with: nvlm data lm ... --vocab {vocab})"
            )

    def _tail_fractions(self, cfg, ids: np.ndarray) -> list[float]:
        edges = [*cfg.model.cutoffs, cfg.model.vocab_size]
        counts = np.histogram(ids, bins=[0, *edges])[0]
        return [float(c) / max(len(ids), 1) for c in counts[1:]]

    # -- training --------------------------------------------------------------------------
    def train_spec(self, cfg, model, data: Path, task: str, world, *, run=None, init=None):
        from nvlm.data.lm.corpus import read_lm_directory
        from nvlm.data.lm.stream import LMStreams
        from nvlm.models.transformer_xl.segment_memory import SegmentMemory
        from nvlm.plugins.transformer_xl.held_out import with_held_out_valid
        from nvlm.train.trainer import TrainSpec

        if task != "pretrain":
            raise UserError(f"Transformer-XL trains the language model only, not {task!r}")
        lm = read_lm_directory(Path(data))
        if init:
            self.check_vocab(lm, init)
        if cfg.data.verify == "full":
            lm.check(("train",), full=True, world=world)
        ids = lm.load("train")  # every id checked against the vocabulary as it is loaded
        m, t = cfg.model, cfg.data.seq_len
        streams = LMStreams(ids, global_batch=cfg.global_batch, tgt_len=t)
        memory = SegmentMemory(cfg.global_batch, m.n_layer, m.mem_len, m.d_model,
                               model.compute_dtype)  # fmt: skip
        char_len = tf.constant(lm.vocab().char_lengths())

        def loss_fn(model, batch, training):
            rows = batch["rows"]
            valid = tf.minimum(batch["segment"] * t, m.mem_len)
            hidden, new_memory = model(
                batch["tokens"], memory.read(rows), valid=valid, training=training
            )
            memory.write(rows, new_memory)
            logp = model.log_prob(hidden, batch["targets"])
            loss = -tf.reduce_mean(logp)
            chars = tf.reduce_sum(tf.cast(tf.gather(char_len, batch["targets"]), tf.float32))
            return loss, {
                "ppl": tf.exp(loss),  # of this micro-batch; the log shows the interval's mean
                "bpt": loss / math.log(2.0),
                "bpc": -tf.reduce_sum(logp) / math.log(2.0) / chars,
            }

        def batches(start: int):
            # The data position counts row-segments (examples); one step = one segment.
            for b in streams.micro_batches(
                start // cfg.global_batch, cfg.train.batch_size, cfg.train.accumulation,
                rank=world.rank, world=world.size,
            ):  # fmt: skip
                yield {k: tf.constant(v) for k, v in b.items()}

        total = None
        if cfg.train.epochs:
            total = max(1, math.ceil(cfg.train.epochs * streams.segments_per_epoch))
        fpt = self.flops_per_token(cfg, t, tail_fractions=self._tail_fractions(cfg, ids))
        spec = TrainSpec(
            model=model,
            loss_fn=loss_fn,
            batches=batches,
            tokens_per_example=t,
            flops_per_example=fpt * t,
            metric_units=METRIC_UNITS,
            extra_state=[memory.states],
            total_steps=total,
            before_checkpoint=memory.sync,
        )
        # Perplexity on a valid split every train.eval_every steps (nvlm pretrain --eval-data).
        return with_held_out_valid(self, cfg, model, spec, Path(data), init=init)

    def write_assets(self, cfg, run: Path, data: Path, init: str | None, task: str) -> None:
        """Copy the vocabulary next to the run so that it is a self-contained --init source."""
        from nvlm.data.lm.corpus import read_lm_directory
        from nvlm.train.run import copy_file

        copy_file(read_lm_directory(Path(data)).vocab_path, Path(run) / VOCAB)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, cfg, model, data: Path, task: str, *, init: str | None = None,
                 split: str = "test", progress=None, **_: Any) -> dict[str, Any]:  # fmt: skip
        """Loss, perplexity, bits per token/character, tok/s and latency over a split of an
        `nvlm data lm` directory or over a text file (tokenized with the run's vocab)."""
        from nvlm.data.lm.corpus import is_lm_directory, read_lines, read_lm_directory
        from nvlm.data.lm.vocab import LMVocab
        from nvlm.models.transformer_xl.evaluation import evaluate_stream
        from nvlm.plugins.transformer_xl.init import source_vocab

        if task != "lm":
            raise UserError(f"Transformer-XL evaluates task lm, not {task!r}")
        data = Path(data)
        if is_lm_directory(data):
            lm = read_lm_directory(data)
            if init:
                self.check_vocab(lm, init)
            vocab, ids, what = lm.vocab(), lm.load(split), f"{data} ({split})"
        elif data.is_file():
            if not init:
                raise UserError("evaluating a text file needs --init (for its vocabulary)")
            vocab = LMVocab.load(source_vocab(init))
            ids = np.array([i for line in read_lines(data) for i in vocab.encode_line(line)],
                           dtype=np.int32)  # fmt: skip
            if np.count_nonzero(ids != vocab.eos_id) == 0:
                raise UserError(f"--data {data} holds no words (an empty file)")
            what = str(data)
        else:
            raise UserError(
                f"--data {data} is neither an nvlm data lm directory nor a text file "
                "(make one with nvlm data lm)"
            )
        if len(vocab) != cfg.model.vocab_size:
            raise UserError(
                f"{what} has a vocabulary of {len(vocab):,} words but the model has "
                f"{cfg.model.vocab_size:,} (tokenize it with the checkpoint's vocab.txt)"
            )
        result = evaluate_stream(
            model, ids, batch_size=cfg.data.eval_batch_size, tgt_len=cfg.data.seq_len,
            mem_len=cfg.model.mem_len, char_lengths=vocab.char_lengths(), xla=cfg.train.xla,
            on_segment=progress,
        )  # fmt: skip
        settings = {
            "tgt_len": cfg.data.seq_len,
            "mem_len": cfg.model.mem_len,
            "clamp_len": cfg.model.clamp_len,
            "same_length": cfg.model.same_length,
            "batch_size": cfg.data.eval_batch_size,
            "precision": cfg.train.precision,
        }
        return {"task": "lm", "data": what, **result, **settings}

    def run_eval(self, task: str, *, init: str, data: Path, split: str | None = None,
                 preset: str | None = None, sets=(), flags=None) -> dict[str, Any]:  # fmt: skip
        """`nvlm eval`: resolve the preset's eval stage for `init`, then `evaluate`."""
        from nvlm.plugins.transformer_xl.language_model import LanguageModel

        lm = LanguageModel.load(self, init, preset=preset, sets=sets, flags=flags)
        return self.evaluate(lm.cfg, lm.model, data, task, init=init, split=split or "test")

    def language_model(self, init: str, *, preset=None, sets=(), flags=None):
        """A loaded `LanguageModel` for `nvlm predict` (next words, generation, scoring)."""
        from nvlm.plugins.transformer_xl.language_model import LanguageModel

        return LanguageModel.load(self, init, preset=preset, sets=sets, flags=flags)

    # -- serving (nvlm convert --to savedmodel) ----------------------------------------------
    def serving_settings(self, src: str) -> dict[str, Any]:
        """The memory length the run was trained with (inference's default is another)."""
        from nvlm.plugins.transformer_xl.init import source_config

        return {"model.mem_len": source_config(src).model.mem_len}

    def serving_signature(self, cfg, model, task: str, *, batch_size, seq_len: int):
        """tokens + memories -> log-probabilities + new memories (transformer_xl/serving.py)."""
        from nvlm.plugins.transformer_xl.serving import lm_signature

        return lm_signature(
            model, batch_size=batch_size, tgt_len=seq_len, mem_len=cfg.model.mem_len
        )

    def write_serving_assets(self, cfg, src: str, directory: Path) -> list[str]:
        """The run's vocab.txt (one word per line; words keep their case)."""
        import shutil

        from nvlm.plugins.transformer_xl.init import source_vocab

        shutil.copyfile(source_vocab(src), directory / VOCAB)
        return [VOCAB]

    # -- checkpoints ---------------------------------------------------------------------
    def init_model_values(self, src: str) -> dict[str, Any]:
        from nvlm.plugins.transformer_xl.init import init_model_values

        return init_model_values(src)

    def load_init(self, model, cfg, src: str, task: str) -> list[str]:
        from nvlm.plugins.transformer_xl.init import load_into

        return load_into(model, src)

    def convert(self, src, dst, *, to: str, overwrite: bool = False, sets=()):
        raise UserError(
            "nvlm convert does not support Transformer-XL yet (its runs are --init sources as "
            "they are)"
        )
