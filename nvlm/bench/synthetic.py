"""Synthetic data in nvlm's real formats, so a fresh machine can be benchmarked before any
data exists (`nvlm benchmark train|infer` without `--data`).

The directories are read by the code a real run uses (`read_shards`, `read_lm_directory`, the
plugins' `data_overrides` / `train_spec`) and pass `nvlm data verify`; their manifests say
`"synthetic": true` and record the generator's parameters, so nobody mistakes them for data.
Only the words are made up: lengths, padding, masking, segment layout and id frequencies follow
the real data, with the sources below. Pretraining instances go through nvlm's own instance
builders and masking (`nvlm.data.pretraining.bert_instances`, `electra_instances`, `masking`), the code
that makes real shards, from made-up documents.

Numbers fitted here (not measured on the real data) are marked as fits or estimates.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nvlm import __version__
from nvlm.data.checksum import sha256_file
from nvlm.data.lm.corpus import FORMAT_VERSION as LM_FORMAT_VERSION
from nvlm.data.lm.corpus import IDS, KIND_LM, VOCAB_FILE, split_file
from nvlm.data.lm.vocab import EOS, UNK, LMVocab
from nvlm.data.manifest import FORMAT_VERSION, write_manifest
from nvlm.data.pretraining.bert_instances import BertInstanceBuilder
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.electra_instances import ElectraInstanceBuilder
from nvlm.data.pretraining.h5_output import H5Output
from nvlm.data.pretraining.instance_layout import layout
from nvlm.data.pretraining.masking import apply_masking
from nvlm.data.pretraining.shard_builder import BATCH, shard_generators
from nvlm.data.pretraining.shard_format import KIND_PRETRAINING, VOCAB_COPY, schema, shard_name
from nvlm.data.pretraining.shard_writer import ShardWriter
from nvlm.data.special_tokens import CLS, MASK, PAD, SEP
from nvlm.data.special_tokens import UNK as WORDPIECE_UNK
from nvlm.data.vocab import Vocab
from nvlm.errors import UserError
from nvlm.outputs import check_writable_dir, write_text

# Google's uncased BERT vocab.txt layout, which ELECTRA shares: [PAD]=0, [unused0..98]=1..99,
# [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, word pieces after. Code that reads a vocab looks
# the ids up by token, and these are the ids a released checkpoint uses.
PAD_ID, CLS_ID, SEP_ID = 0, 101, 102
FIRST_PIECE = 104
_SPECIALS = {0: PAD, 100: WORDPIECE_UNK, 101: CLS, 102: SEP, 103: MASK}

# Word pieces are drawn from a Zipf law over ids 104.. (id 104 the most frequent), exponent 1:
# an estimate (no published rank-frequency curve of BERT's WordPiece vocabulary was found); it
# gives an embedding lookup the reuse of real text, with a head of common pieces.
_PIECE_EXPONENT = 1.0

# Documents (a fit): sentences per document = 1 + floor(LogNormal(1.82, 1.69)), sentence length in
# word pieces = max(1, round(LogNormal(2.94, 0.50))). The four numbers were fitted so that BERT's
# recipe at seq 512 (short_seq_prob 0.1), run by BertInstanceBuilder, reproduces the instance
# lengths of the Wikipedia pretraining data of NVIDIA's and Graphcore's BERT (histogram of 16.3M
# instances in graphcore/examples tutorials/blogs_code/packedBERT/histograms.py; Krell et al.
# 2021, arXiv:2107.02027: "padding tokens represent in excess of 50%"). Real -> synthetic:
# full-length 23.4% -> 24.6%, mean length 256 -> 257 (padding 50.0% -> 49.7%), median 204 -> 203,
# 10th percentile 48 -> 47. Mean document: ~26 sentences of ~21 pieces (~560 pieces, about a
# Wikipedia article: 2,500M words over ~5.5M articles at ~1.25 pieces a word). The same
# documents at seq 128 give ~58% full rows and ~18% padding (a consequence, not a measurement).
_DOC_SENTENCES = (1.82, 1.69)
_SENTENCE_PIECES = (2.94, 0.50)

# WikiText-103 (Merity et al. 2016, "Pointer Sentinel Mixture Models"): 103,227,021 training
# tokens, 267,735 words (each seen >= 3 times in training), 0.4% of tokens <unk>, valid and
# test 217,646 and 245,569 tokens.
_UNK_SHARE = 0.004
_WT103_EVAL = (("valid", 217_646), ("test", 245_569))
# <eos> ends every line: 8,118 lines in 463,215 tokens of WikiText-103's valid + test text
# (the same text as WikiText-2's, measured here): one <eos> per 57 tokens (a third of the
# lines are empty; the others hold 87 words on average).
_EOS_SHARE = 1 / 57.06
# Word frequencies: two regimes as in Ferrer i Cancho & Sole 2001 (J. Quant. Linguistics 8(3)):
# p(r) ~ (r + 1.45)^-1.09 up to rank r = 10,000 (1-based), then ~ r^-1.66. A fit (estimate), not
# WikiText-103's own counts (not available here): the head to valid+test's ("the" 6.1% vs 5.8%,
# top 1,000 words 73% vs 69%), the tail to the vocabulary's floor (rank 267,735 -> 3.1 of 103M
# tokens, 3 in the real vocabulary). On the 267,735-word vocab it puts 94.5% of tokens in the
# head (ids < 19,997) of Transformer-XL base's adaptive softmax, 2.5% in 19,997-39,996, 2.8% in
# 39,997-199,996 and 0.26% beyond (breaks at 5,000 or 20,000 move these by under 1.2 points).
_WORD_LAW = (1.45, 1.09, 10_000, 1.66)

# SQuAD v1.1 features at seq 384 (graphcore/examples packedBERT/histograms.py: 88,641 features
# of the training set): length median 159, 10th/90th percentiles 107/260, 1.2% full. Fitted:
# [CLS] question [SEP] context [SEP] totals LogNormal(ln 159, 0.36), cut at the window (a longer
# context fills it, as doc-stride windows do): median 159, 10th/90th 100/252, 0.7% full at 384.
_SQUAD_LENGTH = (float(np.log(159.0)), 0.36)
# Question length in word pieces, LogNormal(ln 12, 0.35), cut to [2, max_query_len]: an estimate
# (SQuAD questions run about ten words plus the question mark).
_QUESTION_PIECES = (float(np.log(12.0)), 0.35)
# Answer spans: geometric length, mean 3.5 pieces (an estimate: SQuAD answers are mostly short
# noun phrases, dates and numbers), at most 30 (the recipe's max answer length).
_ANSWER_MEAN, _MAX_ANSWER = 3.5, 30
# SQuAD 2.0 training set: 43,498 of 130,319 questions unanswerable (Rajpurkar et al. 2018).
_IMPOSSIBLE_SHARE = 43_498 / 130_319


def _check_wordpiece_size(vocab_size: int) -> None:
    if vocab_size <= FIRST_PIECE:
        raise UserError(
            f"vocab size {vocab_size} is too small for BERT's layout ([MASK] is id 103)",
            hint=f"use more than {FIRST_PIECE} (BERT's is 30522)",
        )


def _wordpiece_vocab(vocab_size: int) -> list[str]:
    """A BERT-layout vocab of `vocab_size` tokens: specials at Google's ids, filler pieces after."""
    _check_wordpiece_size(vocab_size)
    unused = [f"[unused{i}]" for i in range(FIRST_PIECE - len(_SPECIALS))]
    head = [_SPECIALS[i] if i in _SPECIALS else unused.pop(0) for i in range(FIRST_PIECE)]
    return head + [f"w{i}" for i in range(FIRST_PIECE, vocab_size)]


def pretraining_shards(
    directory: Path,
    *,
    model: str,
    vocab_size: int,
    seq_len: int,
    max_predictions: int | None,
    examples: int,
    seed: int = 0,
) -> Path:
    """Write `examples` BERT or ELECTRA instances as `nvlm data pretraining` lays them out.

    `directory` (created; refused if not empty) gets `shard-00000.hdf5`, `vocab.txt` (the
    BERT layout of `_wordpiece_vocab`) and `manifest.json`. Documents of made-up word pieces
    (`_DOC_SENTENCES`, `_SENTENCE_PIECES`: fitted to real Wikipedia instance lengths) go
    through the recipe's instance builder with its defaults (BERT: short_seq_prob 0.1, A/B
    split at a random sentence, B random 50% of the time and always for a one-sentence chunk,
    so ~56% of next_sentence_labels are 1; ELECTRA: short 5%, 10% single-segment). BERT rows
    are then masked by nvlm's masking: min(max_predictions, max(1, round(0.15 * real tokens)))
    positions ([CLS]/[SEP] counted, as Google's create_pretraining_data counts them), never a
    special token, ascending, 80% [MASK] / 10% random / 10% kept. Instances are shuffled.
    `max_predictions` None means the recipe's 20 (BERT; ELECTRA masks while training).
    Deterministic for a seed.
    """
    directory = Path(directory)
    cfg = PretrainingConfig.create(model, seq_len=seq_len, max_predictions=max_predictions,
                                   dupe_factor=1, shards=1, seed=seed)  # fmt: skip
    tokens = _wordpiece_vocab(vocab_size)
    _require(examples >= 1, f"examples must be at least 1, not {examples}")
    created = _claim(directory)
    try:
        write_text(directory / VOCAB_COPY, "".join(t + "\n" for t in tokens))
        vocab = Vocab.load(directory / VOCAB_COPY)
        record = _write_shard(directory, cfg, vocab, examples)
        generator = {
            "function": "nvlm.bench.synthetic.pretraining_shards",
            "model": model,
            "vocab_size": vocab_size,
            "seq_len": seq_len,
            "max_predictions": cfg.max_predictions,
            "examples": examples,
            "seed": seed,
        }
        write_manifest(directory, _pretraining_manifest(cfg, vocab, record, generator))
    except BaseException:
        _release(directory, created)
        raise
    return directory


def _pretraining_manifest(
    cfg: PretrainingConfig, vocab: Vocab, record: dict, generator: dict
) -> dict:
    """The manifest `nvlm data pretraining` writes, with no inputs and the generator instead."""
    datasets = schema(cfg.model, cfg.seq_len, cfg.max_predictions)
    counts = ("documents", "sentences", "tokens", "instances", "masked_tokens")
    return {
        "kind": KIND_PRETRAINING,
        "format_version": FORMAT_VERSION,
        "nvlm_version": __version__,
        "synthetic": True,
        "generator": generator,
        "model": cfg.model,
        "parameters": cfg.to_json(),
        "inputs": [],
        "vocab": {
            "path": str(Path(vocab.path).resolve()),
            "sha256": vocab.sha256,
            "size": len(vocab),
            "special_ids": vocab.special_ids,
        },
        "datasets": {
            name: {"dtype": dtype.name, "shape": ["instances", *shape]}
            for name, (dtype, shape) in datasets.items()
        },
        "next_sentence_labels": {"0": "IsNext (B follows A)", "1": "random B"}
        if cfg.model == "bert"
        else None,
        "counts": {key: record[key] for key in counts},
        "shards": [record],
    }


@dataclass(frozen=True)
class _Documents:
    """Documents as the instance builders read a `TokenizedShard`: index arrays over flat ids."""

    sent_start: np.ndarray
    sent_end: np.ndarray
    doc_first: np.ndarray
    doc_sents: np.ndarray


def _write_shard(directory: Path, cfg: PretrainingConfig, vocab: Vocab, examples: int) -> dict:
    """Make documents, cut them into instances, mask, write shard 0; return its record."""
    rnd, rng = shard_generators(cfg.seed, 0)  # the pair a real shard 0 draws from
    piece_cdf = _cdf(_zipf(len(vocab) - FIRST_PIECE, _PIECE_EXPONENT))
    specs: list[list[int]] = []
    ids: list[np.ndarray] = []
    offset = documents = sentences = 0
    builder_cls = BertInstanceBuilder if cfg.model == "bert" else ElectraInstanceBuilder
    # Rounds of documents (random B segments come from the same round) until the instances
    # suffice: a document gives ~2.5 instances at seq 512 and ~6.5 at 128, so a round or two
    # do, and the surplus (drawn, not written) is cheap.
    while len(specs) < examples:
        n_docs = max(64, (examples - len(specs)) // 4)
        per_doc = 1 + np.floor(_lognormal(rng, _DOC_SENTENCES, n_docs)).astype(np.int64)
        lengths = np.maximum(1, np.rint(_lognormal(rng, _SENTENCE_PIECES, int(per_doc.sum()))))
        ends = offset + np.cumsum(lengths.astype(np.int64))
        docs = _Documents(ends - lengths.astype(np.int64), ends,
                          np.cumsum(per_doc) - per_doc, per_doc)  # fmt: skip
        builder = builder_cls(docs, cfg.seq_len, cfg.short_seq_prob, rnd)
        for doc in range(n_docs):
            builder.document(doc, specs)
        ids.append(FIRST_PIECE + _draw(rng, piece_cdf, int(ends[-1]) - offset))
        offset = int(ends[-1])
        documents, sentences = documents + n_docs, sentences + len(lengths)
    flat = np.concatenate(ids).astype(np.int32)
    chosen = np.asarray(specs, dtype=np.int64)[rng.permutation(len(specs))[:examples]]
    writer = ShardWriter(directory / shard_name(0),
                         schema(cfg.model, cfg.seq_len, cfg.max_predictions))  # fmt: skip
    masked = 0
    replacement = vocab.replacement_ids()
    try:
        for start in range(0, examples, BATCH):
            spec = chosen[start : start + BATCH]
            rows = layout(flat, spec[:, 0], spec[:, 1], spec[:, 2], spec[:, 3], cfg.seq_len,
                          vocab.cls_id, vocab.sep_id, vocab.pad_id)  # fmt: skip
            out = {k: rows[k] for k in ("input_ids", "input_mask", "segment_ids")}
            if cfg.model == "bert":
                out.update(apply_masking(
                    out["input_ids"], rows["content"], rows["n_real"],
                    max_predictions=cfg.max_predictions, masked_lm_prob=cfg.masked_lm_prob,
                    mask_id=vocab.mask_id, replacement_ids=replacement, rng=rng,
                ))  # fmt: skip
                out["next_sentence_labels"] = spec[:, 4].astype(np.int8)
                masked += int(np.count_nonzero(out["masked_lm_positions"]))
            writer.append(out, done=min(1.0, (start + len(spec)) / examples))
        digest = writer.finish()
    except BaseException:
        writer.abort()
        raise
    return {"name": shard_name(0), "instances": examples, "sha256": digest,
            "size": (directory / shard_name(0)).stat().st_size, "documents": documents,
            "sentences": sentences, "tokens": offset, "masked_tokens": masked}  # fmt: skip


def lm_corpus(directory: Path, *, vocab_size: int, tokens: int, seed: int = 0) -> Path:
    """Write a word-level corpus as `nvlm data lm` lays it out, `tokens` long in train.

    `directory` (created; refused if not empty) gets `vocab.txt` (`vocab_size` tokens, most
    frequent first, as adaptive-softmax cutoffs assume), `train.hdf5`, `valid.hdf5` and
    `test.hdf5` (dataset `ids`, int32; valid and test as long as WikiText-103's, 217,646 and
    245,569 tokens, at most `tokens`) and `manifest.json` (kind "lm"). Ids are drawn
    independently from `word_shares`, a two-regime Zipf law fitted to WikiText-103: on its
    267,735-word vocab, 94.5% of tokens fall in the head of Transformer-XL base's adaptive
    softmax (ids < 19,997), 2.5% in 19,997-39,996, 2.8% in 39,997-199,996 and 0.26% beyond (an
    estimate: see `_WORD_LAW`). `<eos>` and `<unk>` take the ranks whose share is nearest
    WikiText-103's: one `<eos>` per 57 tokens (its mean line length; line lengths are
    geometric here) and 0.4% `<unk>`. Every split ends with `<eos>`, as every line does.
    Deterministic for a seed.
    """
    directory = Path(directory)
    eos_id, unk_id = lm_special_ids(vocab_size)
    _require(tokens >= 2, f"tokens must be at least 2, not {tokens}")
    created = _claim(directory)
    try:
        words = [f"w{i}" for i in range(vocab_size)]
        words[eos_id], words[unk_id] = EOS, UNK
        vocab = LMVocab(words)
        write_text(directory / VOCAB_FILE, vocab.text())
        splits = {}
        for stream, (split, length) in enumerate((("train", tokens), *_WT103_EVAL)):
            ids = lm_ids(tokens=min(length, tokens), vocab_size=vocab_size, seed=seed,
                         stream=stream)  # fmt: skip
            splits[split] = _write_split(directory / split_file(split), ids, vocab)
        write_manifest(
            directory,
            {
                "kind": KIND_LM,
                "format_version": LM_FORMAT_VERSION,
                "nvlm_version": __version__,
                "synthetic": True,
                "generator": {
                    "function": "nvlm.bench.synthetic.lm_corpus",
                    "vocab_size": vocab_size,
                    "tokens": tokens,
                    "seed": seed,
                },
                "parameters": {"min_freq": 1, "max_size": None, "add_eos": True},
                "vocab": {
                    "file": VOCAB_FILE,
                    "size": vocab_size,
                    "sha256": sha256_file(directory / VOCAB_FILE),
                    "source": "synthetic",
                    "eos_id": eos_id,
                    "unk_id": unk_id,
                },
                "inputs": [],
                "splits": splits,
                "counts": {"tokens": sum(s["tokens"] for s in splits.values())},
            },
        )
    except BaseException:
        _release(directory, created)
        raise
    return directory


def lm_special_ids(vocab_size: int) -> tuple[int, int]:
    """(<eos> id, <unk> id) of the synthetic LM vocab: the ranks whose `word_shares` are nearest
    WikiText-103's one <eos> per 57 tokens and 0.4% <unk>."""
    _require(
        vocab_size >= 3, f"vocab size {vocab_size} is too small: <eos>, <unk> and a word need 3"
    )
    shares = word_shares(vocab_size)
    eos_id = int(np.argmin(np.abs(shares - _EOS_SHARE)))
    distance = np.abs(shares - _UNK_SHARE)
    distance[eos_id] = np.inf
    return eos_id, int(np.argmin(distance))


def lm_ids(*, tokens: int, vocab_size: int, seed: int = 0, stream: int = 0) -> np.ndarray:
    """int32 [tokens]: a stream of `lm_corpus`'s ids in memory (`stream` 0 is its train split,
    1 valid, 2 test), ending with <eos>. Deterministic for (seed, stream)."""
    _require(tokens >= 1, f"tokens must be at least 1, not {tokens}")
    eos_id, _ = lm_special_ids(vocab_size)
    ids = _draw(np.random.default_rng([seed, stream]), _cdf(word_shares(vocab_size)), tokens)
    ids[-1] = eos_id
    return ids


def _write_split(target: Path, ids: np.ndarray, vocab: LMVocab) -> dict:
    """Write one split's stream; return its manifest record (the counts `nvlm data verify`
    checks: <eos> = lines, <unk>)."""
    out = H5Output(target)
    try:
        # track_times=False: the same seed gives the same bytes (and sha256).
        out.file.create_dataset(
            IDS, data=ids, maxshape=(None,), chunks=(min(len(ids), 65536),), track_times=False
        )
        out.check(needed=4 * len(ids))
        digest = out.finish()
    except BaseException:
        out.abort()
        raise
    lines = int(np.count_nonzero(ids == vocab.eos_id))
    return {
        "file": target.name,
        "sha256": digest,
        "size": target.stat().st_size,
        "tokens": len(ids),
        "lines": lines,
        "words": len(ids) - lines,
        "unk": int(np.count_nonzero(ids == vocab.unk_id)),
        "characters": int(vocab.char_lengths()[ids].sum()),
    }


def word_shares(vocab_size: int) -> np.ndarray:
    """float64 [vocab_size]: the share of tokens each id gets under `_WORD_LAW` (id 0 first)."""
    shift, head_exp, bend, tail_exp = _WORD_LAW
    rank = np.arange(1, vocab_size + 1, dtype=np.float64)
    weight = np.where(
        rank <= bend,
        (rank + shift) ** -head_exp,
        (bend + shift) ** -head_exp * (rank / bend) ** -tail_exp,
    )
    return weight / weight.sum()


def squad_arrays(
    *,
    examples: int,
    seq_len: int,
    vocab_size: int,
    max_query_len: int = 64,
    seed: int = 0,
    version_2: bool = False,
    targets: bool = True,
) -> dict[str, np.ndarray]:
    """int32 arrays shaped like SQuAD features (`nvlm.tasks.squad.SquadFeatures.inputs()/targets()`).

    `input_ids`, `input_mask`, `segment_ids` [examples, seq_len]: [CLS] question [SEP] context
    [SEP] then [PAD] (BERT ids, as `_wordpiece_vocab`), segment 1 from the context to its [SEP].
    With `targets`: `start_positions`, `end_positions`, `is_impossible` [examples]. Lengths
    follow SQuAD v1.1 (see `_SQUAD_LENGTH`: total median 159 pieces, 10th/90th percentiles
    100/252, a context longer than the window fills it), questions median 12 pieces (an
    estimate), answer spans inside the context, mean 3.5 pieces (an estimate); `version_2`
    makes a third unanswerable (start = end = 0, as SQuAD 2.0's 33.4%). Every window holds its
    answer (real windows of a long context that miss it point at [CLS]).
    """
    _require(examples >= 1, f"examples must be at least 1, not {examples}")
    _require(max_query_len >= 2, f"max query length must be at least 2, not {max_query_len}")
    _require(seq_len >= 8, f"sequence length must be at least 8, not {seq_len}")
    _check_wordpiece_size(vocab_size)
    rng = np.random.default_rng(seed)
    piece_cdf = _cdf(_zipf(vocab_size - FIRST_PIECE, _PIECE_EXPONENT))
    # The question leaves room for [CLS] [SEP] [SEP] and one context piece.
    query = np.rint(_lognormal(rng, _QUESTION_PIECES, examples)).astype(np.int64)
    query = np.clip(query, 2, min(max_query_len, seq_len - 4))
    total = np.rint(_lognormal(rng, _SQUAD_LENGTH, examples)).astype(np.int64)
    real = np.clip(total, query + 4, seq_len)
    context = real - query - 3
    pos = np.arange(seq_len)[None, :]
    ids = np.where(pos < real[:, None],
                   FIRST_PIECE + _draw(rng, piece_cdf, examples * seq_len).reshape(examples, -1),
                   PAD_ID)  # fmt: skip
    ids[:, 0] = CLS_ID
    ids[pos == query[:, None] + 1] = SEP_ID
    ids[pos == real[:, None] - 1] = SEP_ID
    out = {
        "input_ids": ids.astype(np.int32),
        "input_mask": (pos < real[:, None]).astype(np.int32),
        "segment_ids": ((pos > query[:, None] + 1) & (pos < real[:, None])).astype(np.int32),
    }
    if not targets:
        return out
    answer = np.minimum(rng.geometric(1 / _ANSWER_MEAN, examples), np.minimum(context, _MAX_ANSWER))
    first = query + 2  # position of the first context piece
    start = first + np.floor(rng.random(examples) * (context - answer + 1)).astype(np.int64)
    impossible = rng.random(examples) < _IMPOSSIBLE_SHARE if version_2 else np.zeros(examples, bool)
    out["start_positions"] = np.where(impossible, 0, start).astype(np.int32)
    out["end_positions"] = np.where(impossible, 0, start + answer - 1).astype(np.int32)
    out["is_impossible"] = impossible.astype(np.int32)
    return out


# --- helpers ------------------------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _claim(directory: Path) -> bool:
    """Make `directory` ours: create it (True) or take it empty (False); refuse anything else,
    so that nothing of someone else's is mixed with (or removed with) synthetic data."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file, not a directory (choose a new directory)")
    if directory.is_dir() and any(directory.iterdir()):
        raise UserError(
            f"{directory} is not empty: synthetic data is written only into a new or empty "
            "directory",
            hint="choose another directory, or empty this one",
        )
    check_writable_dir(directory, option="synthetic data directory")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    return created


def _release(directory: Path, created: bool) -> None:
    """After an error: remove what was written (the directory was new or empty)."""
    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _lognormal(rng: np.random.Generator, params: tuple[float, float], n: int) -> np.ndarray:
    mu, sigma = params
    return np.exp(mu + sigma * rng.standard_normal(n))


def _zipf(n: int, exponent: float) -> np.ndarray:
    weight = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return weight / weight.sum()


def _cdf(probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0  # rounding must not leave a draw past the last id
    return cdf


def _draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """`n` ids (int32) with P(id) = cdf[id] - cdf[id - 1]: inverse-CDF sampling, O(n log V)."""
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int32)
