"""`nvlm data vocab`: train a BERT-style WordPiece vocabulary with `tokenizers`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from nvlm.data.checksum import sha256_file
from nvlm.data.special_tokens import CONTINUATION_PREFIX, SPECIAL_TOKENS, UNK
from nvlm.data.text_reader import iter_lines
from nvlm.errors import UserError
from nvlm.outputs import check_output_file, write_text

# Lines handed to the Rust trainer per Python call; batching keeps the iterator overhead small.
_BATCH_LINES = 2048
# BERT's alphabet cap (HF's BertWordPieceTokenizer default): rare characters become [UNK] instead
# of each taking a vocab slot (and a `##` twin).
LIMIT_ALPHABET = 1000


def canonical_order(vocab: dict[str, int]) -> list[str]:
    """Specials at 0-4, then word-initial tokens, then `##` pieces, each group sorted.

    The trainer numbers tokens in hash-map order, so two runs on the same text give the same
    set in different orders (huggingface/tokenizers#1794). WordPiece lookup is longest-match and
    ignores ids, so sorting loses nothing and makes the file reproducible.
    """
    rest = [t for t in vocab if t not in SPECIAL_TOKENS]
    rest.sort(key=lambda t: (t.startswith(CONTINUATION_PREFIX), t))
    return [*SPECIAL_TOKENS, *rest]


def _continuation_alphabet(inputs: list[Path], errors: str, cased: bool) -> list[str]:
    """`##c` for every character c that continues a word in the text (within the trainer's
    alphabet: the LIMIT_ALPHABET most frequent characters), in a fixed order."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=not cased
    )
    pre = pre_tokenizers.BertPreTokenizer()
    every: Counter[str] = Counter()
    inner: Counter[str] = Counter()
    for path in inputs:
        for line in iter_lines(path, errors):
            for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
                every.update(word)
                inner.update(word[1:])
    alphabet = {
        c for c, _ in sorted(every.items(), key=lambda kv: (-kv[1], kv[0]))[:LIMIT_ALPHABET]
    }
    return [CONTINUATION_PREFIX + c for c in sorted(inner) if c in alphabet]


def train_vocab(
    inputs: list[Path],
    vocab_size: int,
    out: Path,
    *,
    cased: bool = False,
    min_frequency: int = 2,
    errors: str = "strict",
    overwrite: bool = False,
) -> dict:
    """Train WordPiece on `inputs` and write `out` (BERT vocab.txt, specials at ids 0-4).

    `out` is never one of the inputs, and an existing `out` is replaced only with `overwrite`.
    Returns the summary: requested and actual size (small corpora cannot fill a large vocab),
    lines and characters read, sha256 of the file, seconds.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"--vocab-size must exceed {len(SPECIAL_TOKENS)} (the special tokens)")
    if min_frequency < 1:
        raise UserError("--min-frequency must be at least 1")
    check_output_file(out, inputs={"--input": list(inputs)}, overwrite=overwrite)
    if not out.parent.exists():
        raise UserError(f"the directory of --out {out} does not exist")

    counts = {"lines": 0, "chars": 0}

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        for path in inputs:
            for line in iter_lines(path, errors):
                text = line.strip()
                if not text:
                    continue
                counts["lines"] += 1
                counts["chars"] += len(text)
                batch.append(text)
                if len(batch) >= _BATCH_LINES:
                    yield batch
                    batch = []
        if batch:
            yield batch

    start = time.perf_counter()
    pinned = _continuation_alphabet(inputs, errors, cased)
    tok = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=not cased
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        # Pinning the `##x` pieces as "special" gives them fixed ids before training starts; the
        # trainer would otherwise number them in hash-map order, which changes how ties between
        # equally frequent merges break, and so the vocab itself, from run to run
        # (huggingface/tokenizers#1794). They are in any BERT vocab anyway.
        special_tokens=[*SPECIAL_TOKENS, *pinned],
        limit_alphabet=LIMIT_ALPHABET,
        continuing_subword_prefix=CONTINUATION_PREFIX,
        show_progress=False,
    )
    tok.train_from_iterator(batches(), trainer)
    if counts["lines"] == 0:
        raise UserError("no text in the input", hint="the files are empty or blank")
    tokens = canonical_order(tok.get_vocab())
    write_text(out, "".join(t + "\n" for t in tokens))
    return {
        "out": str(out),
        "vocab_size_requested": vocab_size,
        "vocab_size": len(tokens),
        "lowercase": not cased,
        "min_frequency": min_frequency,
        "lines": counts["lines"],
        "characters": counts["chars"],
        "sha256": sha256_file(out),
        "seconds": round(time.perf_counter() - start, 3),
    }
