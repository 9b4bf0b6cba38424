"""Word-level vocabulary of a language-modelling corpus (WikiText style).

Tokens are whitespace-separated words; every line ends with `<eos>`, so an empty line is one
`<eos>` (what the Transformer-XL reference does for WikiText, so token counts match the
published ones: WikiText-2 valid = 217,646 tokens). Ids are ordered by decreasing frequency in
the training split (ties: alphabetical), because adaptive-softmax cutoffs assume that id 0..c0-1
are the most frequent words. Words cut by `min_freq` / `max_size` become `<unk>`, whose rank
counts them too. `<eos>` and `<unk>` are always in the vocabulary.

File format (`vocab.txt`): one token per line, line k holds id k.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nvlm.errors import UserError
from nvlm.run_dir import VOCAB

EOS = "<eos>"
UNK = "<unk>"


class LMVocab:
    """Token <-> id maps of a word-level LM corpus.

    Args:
        tokens: the vocabulary, id order; must hold `<eos>` and `<unk>` once each.

    Example:
    >>> vocab = LMVocab.from_counts(Counter({"the": 3, "cat": 1, EOS: 2}))
    >>> vocab.tokens
    ['the', '<eos>', 'cat', '<unk>']
    >>> vocab.encode_line("the dog")
    [0, 3, 1]
    """

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            seen: set[str] = set()
            dup = next(t for t in self.tokens if t in seen or seen.add(t))
            raise UserError(f"the vocabulary lists {dup!r} twice (one token per line, once)")
        for special in (EOS, UNK):
            if special not in self.index:
                raise UserError(f"the vocabulary has no {special} token (add it as a line)")
        self.eos_id = self.index[EOS]
        self.unk_id = self.index[UNK]

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_counts(
        cls, counts: Counter, *, min_freq: int = 1, max_size: int | None = None
    ) -> LMVocab:
        """Most frequent first; words under `min_freq` or past `max_size` map to `<unk>`."""
        kept = {t: c for t, c in counts.items() if c >= min_freq or t in (EOS, UNK)}
        kept.setdefault(EOS, 0)
        unk = kept.setdefault(UNK, 0) + sum(c for t, c in counts.items() if t not in kept)
        kept[UNK] = unk
        order = sorted(kept, key=lambda t: (-kept[t], t))
        if max_size is not None and len(order) > max_size:
            words = [t for t in order if t not in (EOS, UNK)]
            kept[UNK] += sum(kept[t] for t in words[max_size - 2 :])
            order = sorted([*words[: max_size - 2], EOS, UNK], key=lambda t: (-kept[t], t))
        return cls(order)

    @classmethod
    def load(cls, path: Path) -> LMVocab:
        path = Path(path)
        if path.is_dir():
            inside = path / VOCAB
            raise UserError(
                f"vocabulary {path} is a directory, not a vocab.txt file",
                hint=f"pass {inside}" if inside.is_file() else "pass the vocab.txt file itself",
            )
        if not path.is_file():
            raise UserError(
                f"vocabulary {path} does not exist (pass a vocab.txt of `nvlm data lm`)"
            )
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise UserError(f"vocabulary {path} is not UTF-8 text (byte {exc.start})") from None
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [line.strip() for line in lines]
        if not tokens or any(not t or " " in t for t in tokens):
            raise UserError(f"vocabulary {path} must hold one token per line, no blank lines")
        try:
            return cls(tokens)
        except UserError as exc:
            raise UserError(f"vocabulary {path}: {exc}") from None

    def text(self) -> str:
        return "".join(t + "\n" for t in self.tokens)

    def encode_words(self, words: Iterable[str]) -> list[int]:
        unk = self.unk_id
        return [self.index.get(w, unk) for w in words]

    def encode_line(self, line: str) -> list[int]:
        """The ids of one line of text: its words, then `<eos>`."""
        return [*self.encode_words(line.split()), self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces; `<eos>` becomes a line break."""
        out: list[str] = []
        for i in ids:
            out.append("\n" if i == self.eos_id else self.tokens[i] + " ")
        return "".join(out).replace(" \n", "\n")

    def char_lengths(self) -> np.ndarray:
        """Characters per token for bits per character: a word counts its letters plus one
        separator (the space or line break after it), `<eos>` counts 1 (its line break).
        This is the character count of the corpus written one line per line with single
        spaces, which is WikiText's own layout minus its leading space."""
        return np.array([1 if t == EOS else len(t) + 1 for t in self.tokens], dtype=np.int32)


def count_words(lines: Iterable[str]) -> tuple[Counter, int]:
    """Token counts (with one `<eos>` per line) and the number of lines."""
    counts: Counter = Counter()
    n = 0
    for line in lines:
        counts.update(line.split())
        n += 1
    counts[EOS] += n
    return counts, n
