"""The special tokens every nvlm vocab carries, and where `nvlm data vocab` puts them.

Our vocabularies put them first: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4. Google's released
BERT vocab puts [PAD] at 0 and the other four at 100-103, so code that reads a vocab must never
assume these numbers: it looks each id up by token (`Vocab.special_ids`).
"""

from __future__ import annotations

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"

# Order = the ids `nvlm data vocab` assigns (0..4).
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)

# WordPiece marks a piece that continues a word with this prefix (BERT convention).
CONTINUATION_PREFIX = "##"
