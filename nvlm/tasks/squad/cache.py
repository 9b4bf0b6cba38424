"""On-disk cache of `SquadFeatures`, so a second run (or an eval after a finetune) skips
tokenization.

One `.npz` file per key. The key is a sha256 over everything the arrays depend on: the vocab
file's sha256, the casing, seq len, doc stride, max query len, training mode, the SQuAD file's
sha256, the `tokenizers` version and `FEATURE_FORMAT` (bump it when the layout changes). A file
is written under a temporary name in the cache directory and renamed into place, so a reader
(another rank, a killed run) never sees half a file; a file that does not load, or whose stored
key differs, is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from nvlm.data.vocab import Vocab
from nvlm.report import warn
from nvlm.tasks.squad.dataset import SquadDataset
from nvlm.tasks.squad.features import DOC_STRIDE, MAX_QUERY_LEN, SEQ_LEN, featurize
from nvlm.tasks.squad.squad_features import SquadFeatures

# Version of the array layout written by `featurize`; part of the key.
FEATURE_FORMAT = 1

_KEY_ARRAY = "cache_key"


def cache_key(
    dataset: SquadDataset,
    vocab: Vocab,
    *,
    lowercase: bool,
    seq_len: int = SEQ_LEN,
    doc_stride: int = DOC_STRIDE,
    max_query_len: int = MAX_QUERY_LEN,
    training: bool = False,
) -> dict:
    """What the cached arrays depend on (written into the file and hashed into its name)."""
    import tokenizers

    if not dataset.sha256 or not vocab.sha256:
        raise ValueError("caching needs the file digests: read both with read_squad/Vocab.load")
    return {
        "format": FEATURE_FORMAT,
        "squad_sha256": dataset.sha256,
        "squad_version": dataset.version,
        "vocab_sha256": vocab.sha256,
        "lowercase": bool(lowercase),
        "seq_len": int(seq_len),
        "doc_stride": int(doc_stride),
        "max_query_len": int(max_query_len),
        "training": bool(training),
        "tokenizers": tokenizers.__version__,
    }


def cache_path(cache_dir: str | os.PathLike[str], key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / f"squad-features-{digest[:24]}.npz"


def load_or_featurize(
    dataset: SquadDataset,
    vocab: Vocab,
    cache_dir: str | os.PathLike[str] | None,
    *,
    lowercase: bool,
    seq_len: int = SEQ_LEN,
    doc_stride: int = DOC_STRIDE,
    max_query_len: int = MAX_QUERY_LEN,
    training: bool = False,
) -> tuple[SquadFeatures, bool]:
    """`featurize` through the cache in `cache_dir` (None: no cache).

    Returns the features and whether they came from the cache.
    """
    settings = dict(
        lowercase=lowercase,
        seq_len=seq_len,
        doc_stride=doc_stride,
        max_query_len=max_query_len,
        training=training,
    )
    if cache_dir is None:
        return featurize(dataset, vocab, **settings), False
    key = cache_key(dataset, vocab, **settings)
    path = cache_path(cache_dir, key)
    cached = _load(path, key, len(dataset))
    if cached is not None:
        return cached, True
    features = featurize(dataset, vocab, **settings)
    _save(path, key, features)
    return features, False


def _load(path: Path, key: dict, num_examples: int) -> SquadFeatures | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if json.loads(str(archive[_KEY_ARRAY])) != key:
                return None
            features = _unpack({name: archive[name] for name in archive.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # unreadable or from another layout: rebuild it
    if len(features) and int(features.example_index.max()) >= num_examples:
        return None
    return features


def _save(path: Path, key: dict, features: SquadFeatures) -> None:
    """Write the cache file; a cache that cannot be written costs time, not the run: warn."""
    try:
        _write(path, key, features)
    except OSError as exc:
        warn(f"could not write the SQuAD feature cache {path}: {exc.strerror or exc}")


def _write(path: Path, key: dict, features: SquadFeatures) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A per-process temporary name: ranks building the same cache at once do not collide, and
    # the rename makes whichever finishes last the (identical) winner.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **_pack(features), **{_KEY_ARRAY: np.array(json.dumps(key))})
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pack(features: SquadFeatures) -> dict[str, np.ndarray]:
    """The arrays to store, about a third of their in-memory size: the mask and segment ids
    follow from where the window sits, and ids fit 16 bits for any vocab under 65,536 tokens
    (BERT's has 30,522)."""
    arrays = features.to_arrays()
    del arrays["input_mask"], arrays["segment_ids"]
    ids = arrays["input_ids"]
    if ids.size and int(ids.max()) < 1 << 16:
        arrays["input_ids"] = ids.astype(np.uint16)
    return arrays


def _unpack(arrays: dict[str, np.ndarray]) -> SquadFeatures:
    ids = arrays["input_ids"].astype(np.int32, copy=False)
    positions = np.arange(ids.shape[1], dtype=np.int32)[None, :]
    first = arrays["doc_offset"][:, None]
    closing = first + arrays["doc_length"][:, None]  # the [SEP] after the window
    arrays = dict(arrays, input_ids=ids)
    arrays["input_mask"] = (positions <= closing).astype(np.int32)
    arrays["segment_ids"] = ((positions >= first) & (positions <= closing)).astype(np.int32)
    return SquadFeatures.from_arrays(arrays)
