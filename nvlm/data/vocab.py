"""`Vocab`: a BERT `vocab.txt` (one token per line, id = line number) and its tokenizer."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from nvlm.data.special_tokens import (
    CLS,
    CONTINUATION_PREFIX,
    MASK,
    PAD,
    SEP,
    SPECIAL_TOKENS,
    UNK,
)
from nvlm.errors import UserError
from nvlm.run_dir import TOKENIZER_CONFIG, VOCAB


class Vocab:
    """A WordPiece vocabulary in BERT's `vocab.txt` format.

    Ids are looked up by token, never assumed: our vocabs put [PAD] [UNK] [CLS] [SEP] [MASK] at
    0-4, Google's put [UNK]..[MASK] at 100-103, and both load the same way.

    Args:
        tokens: the tokens in id order.
        path: the file they came from (for messages), if any.
        sha256: hex digest of the file's bytes (the manifest records it).

    Example:
        >>> vocab = Vocab.load("vocab.txt")
        >>> vocab.id(vocab.special.mask)  # doctest: +SKIP
        4
    """

    def __init__(self, tokens: list[str], path: str | None = None, sha256: str = "") -> None:
        self.tokens = tokens
        self.path = path
        self.sha256 = sha256
        self._ids = {token: i for i, token in enumerate(tokens)}
        where = path or "the vocab"
        if len(self._ids) != len(tokens):
            seen: set[str] = set()
            dup = next(t for t in tokens if t in seen or seen.add(t))
            raise UserError(
                f"{where} lists the token {dup!r} twice", hint="a vocab.txt needs unique lines"
            )
        missing = [t for t in SPECIAL_TOKENS if t not in self._ids]
        if missing:
            raise UserError(
                f"{where} lacks the special tokens {' '.join(missing)}",
                hint="train a vocab with `nvlm data vocab`, or add those lines to the file",
            )
        self.pad_id = self._ids[PAD]
        self.unk_id = self._ids[UNK]
        self.cls_id = self._ids[CLS]
        self.sep_id = self._ids[SEP]
        self.mask_id = self._ids[MASK]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        path = Path(path)
        if path.is_dir():
            inside = path / VOCAB
            raise UserError(
                f"vocab {path} is a directory, not a vocab.txt file",
                hint=f"pass {inside}" if inside.is_file() else "pass the vocab.txt file itself",
            )
        if not path.is_file():
            raise UserError(f"vocab not found: {path}", hint="make one with `nvlm data vocab`")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path}: not UTF-8 at byte offset {exc.start}; is it a vocab.txt?"
            ) from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
        if not tokens:
            raise UserError(f"vocab {path} is empty")
        return cls(tokens, str(path), hashlib.sha256(raw).hexdigest())

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._ids[token]

    def get(self, token: str, default: int | None = None) -> int | None:
        return self._ids.get(token, default)

    @property
    def special_ids(self) -> dict[str, int]:
        return {t: self._ids[t] for t in SPECIAL_TOKENS}

    def continuation_table(self) -> np.ndarray:
        """bool[vocab size]: True where a token continues a word (`##` pieces)."""
        return np.fromiter(
            (t.startswith(CONTINUATION_PREFIX) for t in self.tokens), dtype=bool, count=len(self)
        )

    def replacement_ids(self) -> np.ndarray:
        """int32 ids a masked token may be swapped for (the 10% random case): all non-specials."""
        special = set(self.special_ids.values())
        return np.array([i for i in range(len(self)) if i not in special], dtype=np.int32)

    def tokenizer(self, lowercase: bool = True):
        """The `tokenizers` WordPiece tokenizer for this vocab, BERT normalisation, no specials added."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        tok = Tokenizer(
            models.WordPiece(
                vocab=dict(self._ids),
                unk_token=UNK,
                continuing_subword_prefix=CONTINUATION_PREFIX,
                # BERT's limit: a longer "word" (a URL, a hash) becomes one [UNK].
                max_input_chars_per_word=100,
            )
        )
        # strip_accents=None follows `lowercase`, as in BERT (uncased models strip accents).
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tok


def write_tokenizer_config(
    directory: Path,
    lowercase: bool,
    *,
    tokenizer_class: str | None = None,
    model_max_length: int | None = None,
) -> None:
    """Record the casing next to vocab.txt, under Hugging Face's name for it
    (tokenizer_config.json `do_lower_case`), atomically.

    A Hugging Face export also names its `tokenizer_class` ("BertTokenizer", "ElectraTokenizer")
    and `model_max_length` (the position table's rows), with the settings and special tokens
    BERT's tokenizer uses, so that `AutoTokenizer.from_pretrained(DIR)` needs nothing else.
    """
    import json

    from nvlm.outputs import write_text

    config: dict = {"do_lower_case": lowercase}
    if tokenizer_class is not None:
        config.update(
            tokenizer_class=tokenizer_class,
            model_max_length=model_max_length,
            do_basic_tokenize=True,
            tokenize_chinese_chars=True,
            strip_accents=None,  # None: follow do_lower_case, as Vocab.tokenizer does
            unk_token=UNK,
            sep_token=SEP,
            pad_token=PAD,
            cls_token=CLS,
            mask_token=MASK,
        )
        if model_max_length is None:
            del config["model_max_length"]
    # A run's file stays the one line it has always been; an export's is indented, as HF's are.
    text = json.dumps(config, indent=2 if tokenizer_class else None)
    write_text(Path(directory) / TOKENIZER_CONFIG, text + "\n")
