"""Build one pretraining shard from its tokenized documents.

Randomness: every draw of shard i comes from generators seeded by (seed, i) only, so a shard's
bytes do not depend on the worker count, on which worker made it, or on other shards.
Shuffling is bounded: each dupe pass visits the documents in a fresh random order, and each
batch of BATCH instances is permuted before it is written (a global shuffle of a shard would
need it all in memory; training shuffles again anyway).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nvlm.data.pretraining.bert_instances import BertInstanceBuilder
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.electra_instances import ElectraInstanceBuilder
from nvlm.data.pretraining.instance_layout import layout
from nvlm.data.pretraining.masking import apply_masking
from nvlm.data.pretraining.shard_format import schema, shard_name
from nvlm.data.pretraining.shard_writer import ShardWriter
from nvlm.data.pretraining.tokenized_shard import TokenizedShard
from nvlm.data.vocab import Vocab

BATCH = 4096  # instances laid out, masked and written together


def shard_generators(seed: int, index: int) -> tuple[random.Random, np.random.Generator]:
    seq = np.random.SeedSequence([seed, index])
    scalar_seed, vector_seq = seq.spawn(2)
    return random.Random(int(scalar_seed.generate_state(1, np.uint64)[0])), np.random.default_rng(
        vector_seq
    )


def build_shard(
    index: int,
    tokens: TokenizedShard,
    cfg: PretrainingConfig,
    vocab: Vocab,
    out_dir: Path,
    on_instances: Callable[[int], None] | None = None,
) -> dict:
    """Write `shard-<index>.hdf5` into out_dir; return its manifest record."""
    rnd, rng = shard_generators(cfg.seed, index)
    builder_cls = BertInstanceBuilder if cfg.model == "bert" else ElectraInstanceBuilder
    builder = builder_cls(tokens, cfg.seq_len, cfg.short_seq_prob, rnd)
    continuation = vocab.continuation_table() if cfg.whole_word_masking else None
    replacement = vocab.replacement_ids()
    writer = ShardWriter(
        out_dir / shard_name(index), schema(cfg.model, cfg.seq_len, cfg.max_predictions)
    )
    totals = {"instances": 0, "masked_tokens": 0}
    # Documents visited over all dupe passes: the share of the shard written so far, from
    # which a full disk estimates the whole shard's size.
    visits = {"done": 0, "total": max(1, cfg.dupe_factor * tokens.documents)}

    def flush(specs: list[list[int]]) -> None:
        spec = np.asarray(specs, dtype=np.int64)
        arrays = layout(
            tokens.ids, spec[:, 0], spec[:, 1], spec[:, 2], spec[:, 3],
            cfg.seq_len, vocab.cls_id, vocab.sep_id, vocab.pad_id,
        )  # fmt: skip
        out = {k: arrays[k] for k in ("input_ids", "input_mask", "segment_ids")}
        if cfg.model == "bert":
            out.update(
                apply_masking(
                    out["input_ids"],
                    arrays["content"],
                    arrays["n_real"],
                    max_predictions=cfg.max_predictions,
                    masked_lm_prob=cfg.masked_lm_prob,
                    mask_id=vocab.mask_id,
                    replacement_ids=replacement,
                    rng=rng,
                    continuation=continuation,
                )  # fmt: skip
            )
            out["next_sentence_labels"] = spec[:, 4].astype(np.int8)
            totals["masked_tokens"] += int(np.count_nonzero(out["masked_lm_positions"]))
        perm = rng.permutation(len(spec))
        writer.append(
            {k: v[perm] for k, v in out.items()}, done=max(visits["done"], 1) / visits["total"]
        )
        totals["instances"] += len(spec)
        if on_instances is not None:
            on_instances(len(spec))

    try:
        specs: list[list[int]] = []
        order = list(range(tokens.documents))
        for _ in range(cfg.dupe_factor):
            rnd.shuffle(order)
            for doc in order:
                builder.document(doc, specs)
                visits["done"] += 1
                if len(specs) >= BATCH:
                    flush(specs[:BATCH])
                    del specs[:BATCH]
        if specs:
            flush(specs)
        digest = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return {
        "name": shard_name(index),
        "instances": totals["instances"],
        "sha256": digest,
        # The size lets every training start check the file cheaply (nvlm.data.integrity).
        "size": (out_dir / shard_name(index)).stat().st_size,
        "documents": tokens.documents,
        "sentences": len(tokens.sent_start),
        "tokens": len(tokens.ids),
        "masked_tokens": totals["masked_tokens"],
    }
