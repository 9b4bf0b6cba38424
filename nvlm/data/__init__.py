"""Data preparation for nvlm: vocabularies, pretraining shards, downloads, Wikipedia text.

What the rest of nvlm calls:

    from nvlm.data import ExampleSource, Vocab, read_shards
    shards = read_shards("data/bert-128")           # a directory made by `nvlm data pretraining`
    source = ExampleSource(shards.parts(["input_ids", "segment_ids"]), seed=1)
    for batch in source.micro_batches(0, 32, rank=0, world=1):  # from global position 0
        batch["input_ids"]                          # int32 [32, seq_len], etc.
    vocab = Vocab.load(shards.vocab_path)

These are the reader training uses (one manifest reader, one row reader that checks what it
reads). Subpackages group the rest by concern: `pretraining/` (instances, masking, HDF5 shards),
`lm/` (Transformer-XL token streams), `wikipedia/` (dump extraction), `download/` (datasets
with checksums); the modules here are shared (text, vocab, manifest, integrity, checksums).

The commands' library functions (`train_vocab`, `prepare_pretraining`, `verify_directory`,
`download_dataset`, `extract_wikipedia`, `write_demo_corpus`) are importable from their modules.
Imports here are lazy so that `import nvlm.data` costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ExampleSource": "nvlm.data.examples",
    "read_shards": "nvlm.data.pretraining.shards",
    "Vocab": "nvlm.data.vocab",
    "PretrainingConfig": "nvlm.data.pretraining.config",
    "prepare_pretraining": "nvlm.data.pretraining.prepare",
    "verify_directory": "nvlm.data.verify",
    "train_vocab": "nvlm.data.vocab_trainer",
    "download_dataset": "nvlm.data.download.fetch",
    "extract_wikipedia": "nvlm.data.wikipedia.extract",
    "write_demo_corpus": "nvlm.data.demo_corpus",
    "demo_documents": "nvlm.data.demo_corpus",
    "read_manifest": "nvlm.data.manifest",
    "SPECIAL_TOKENS": "nvlm.data.special_tokens",
}

__all__ = [
    "PretrainingConfig",
    "SPECIAL_TOKENS",
    "ExampleSource",
    "Vocab",
    "demo_documents",
    "download_dataset",
    "extract_wikipedia",
    "prepare_pretraining",
    "read_manifest",
    "read_shards",
    "train_vocab",
    "verify_directory",
    "write_demo_corpus",
]

if TYPE_CHECKING:
    from nvlm.data.demo_corpus import demo_documents, write_demo_corpus
    from nvlm.data.download.fetch import download_dataset
    from nvlm.data.examples import ExampleSource
    from nvlm.data.manifest import read_manifest
    from nvlm.data.pretraining.config import PretrainingConfig
    from nvlm.data.pretraining.prepare import prepare_pretraining
    from nvlm.data.pretraining.shards import read_shards
    from nvlm.data.special_tokens import SPECIAL_TOKENS
    from nvlm.data.verify import verify_directory
    from nvlm.data.vocab import Vocab
    from nvlm.data.vocab_trainer import train_vocab
    from nvlm.data.wikipedia.extract import extract_wikipedia


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nvlm.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
