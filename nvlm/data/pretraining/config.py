"""`PretrainingConfig`: every parameter that decides the bytes of a pretraining directory."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nvlm.data.pretraining.holdout_split import holdout_count
from nvlm.data.text_reader import ERROR_MODES
from nvlm.errors import UserError

MODELS = ("bert", "electra")
MIN_SEQ_LEN, MAX_SEQ_LEN = 8, 512
# --shards 0: one shard per 64 MiB of input text, about 100k BERT-128 instances per shard at
# dupe factor 5 (~100 MB of HDF5): a size a training process loads whole without thinking.
AUTO_SHARD_BYTES = 64 << 20

# Recipe defaults that differ by model. BERT (Devlin et al., google-research/bert README):
# dupe factor 5, short sequences 10% of the time. ELECTRA (Clark et al.,
# build_pretraining_dataset.py): no duplication (masking happens at training time), a random
# shorter target length 5% of the time.
_MODEL_DEFAULTS = {
    "bert": {"dupe_factor": 5, "short_seq_prob": 0.1},
    "electra": {"dupe_factor": 1, "short_seq_prob": 0.05},
}


@dataclass(frozen=True)
class PretrainingConfig:
    """Parameters of `nvlm data pretraining` that shape the output (worker count does not).

    Args:
        model: "bert" (masked, sentence pairs with NSP labels) or "electra" (packed, unmasked).
        seq_len: tokens per instance including [CLS]/[SEP], 8..512.
        max_predictions: cap on masked positions per instance (BERT only).
        masked_lm_prob: fraction of tokens to mask (BERT only).
        dupe_factor: passes over the corpus, each with different random choices.
        short_seq_prob: chance that an instance targets a random shorter length.
        shards: number of HDF5 files; documents go to shard (document index mod shards);
            0 = automatic, one shard per AUTO_SHARD_BYTES of input (resolved from the input).
        seed: the one seed every random choice derives from (with the shard index).
        lowercase: BERT normalisation lowercases and strips accents (uncased vocab).
        whole_word_masking: mask all WordPieces of a chosen word together (BERT only).
        split_sentences: the input is raw paragraphs; split them with pysbd.
        lang: pysbd language for --split-sentences.
        errors: "strict" stops on bytes that are not UTF-8; "replace" substitutes U+FFFD.
        holdout_documents: documents kept out of training for a held-out set in DIR/heldout/:
            a count (1 or more, whole) or a fraction below 1; None = no held-out set.

    Example:
        >>> PretrainingConfig.create("bert", shards=4).dupe_factor
        5
    """

    model: str
    seq_len: int = 128
    max_predictions: int | None = 20
    masked_lm_prob: float | None = 0.15
    dupe_factor: int = 5
    short_seq_prob: float = 0.1
    shards: int = 1
    seed: int = 12345
    lowercase: bool = True
    whole_word_masking: bool = False
    split_sentences: bool = False
    lang: str = "en"
    errors: str = "strict"
    holdout_documents: float | None = None

    @classmethod
    def create(cls, model: str, **given) -> PretrainingConfig:
        """Fill the model's recipe defaults for options left as None, then validate."""
        if model not in MODELS:
            raise UserError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
        values = {k: v for k, v in given.items() if v is not None}
        for key, default in _MODEL_DEFAULTS[model].items():
            values.setdefault(key, default)
        if model == "electra":
            # Masking is dynamic for ELECTRA: these would only pretend to mean something.
            values["max_predictions"] = None
            values["masked_lm_prob"] = None
            values["whole_word_masking"] = False
        cfg = cls(model=model, **values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not MIN_SEQ_LEN <= self.seq_len <= MAX_SEQ_LEN:
            raise UserError(
                f"--seq-len must be between {MIN_SEQ_LEN} and {MAX_SEQ_LEN}, not {self.seq_len}",
                hint="BERT's position embeddings stop at 512",
            )
        if self.model == "bert":
            room = self.seq_len - 3  # [CLS] A [SEP] B [SEP]: three positions are never masked
            if self.max_predictions is None or not 1 <= self.max_predictions <= room:
                raise UserError(
                    f"--max-predictions {self.max_predictions} does not fit --seq-len "
                    f"{self.seq_len}: at most {room} tokens of a sequence can be masked",
                    hint=f"use --max-predictions between 1 and {room}",
                )
            if self.masked_lm_prob is None or not 0.0 < self.masked_lm_prob <= 1.0:
                raise UserError(f"--masked-lm-prob must be in (0, 1], not {self.masked_lm_prob}")
        if self.dupe_factor < 1:
            raise UserError(f"--dupe-factor must be at least 1, not {self.dupe_factor}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"--short-seq-prob must be in [0, 1], not {self.short_seq_prob}")
        if not 0 <= self.shards <= 100_000:
            raise UserError(
                f"--shards must be between 1 and 100000 (0 = automatic), not {self.shards}"
            )
        if self.seed < 0:
            raise UserError(f"--seed must be non-negative, not {self.seed}")
        if self.errors not in ERROR_MODES:
            raise UserError(
                f"--errors must be one of {', '.join(ERROR_MODES)}, not {self.errors!r}"
            )

        if self.holdout_documents is not None:
            holdout_count(self.holdout_documents, 1)  # refuse <= 0 and 2.5 before reading input

    def to_json(self) -> dict:
        values = asdict(self)
        # Absent rather than null when unused: a directory made before the option existed
        # keeps the same parameters, so its rerun still resumes instead of being refused.
        if values["holdout_documents"] is None:
            del values["holdout_documents"]
        return values
