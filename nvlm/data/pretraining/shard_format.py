"""The HDF5 shard format: dataset names (NVIDIA's), dtypes and shapes, file names.

BERT shard, N instances, L = seq_len, P = max_predictions:
    input_ids             int32 [N, L]  [CLS] A [SEP] B [SEP] then [PAD]
    input_mask            int8  [N, L]  1 on real tokens, 0 on padding
    segment_ids           int8  [N, L]  0 for [CLS] A [SEP], 1 for B [SEP], 0 on padding
    masked_lm_positions   int32 [N, P]  ascending positions, zero padded (0 is [CLS], never masked)
    masked_lm_ids         int32 [N, P]  the original token at each position, zero padded
    next_sentence_labels  int8  [N]     0 = B follows A ("IsNext"), 1 = B is random (Google's)
ELECTRA shard: input_ids, input_mask, segment_ids only (masking happens during training).
"""

from __future__ import annotations

import numpy as np

from nvlm.run_dir import VOCAB

SHARD_PATTERN = "shard-{:05d}.hdf5"
MANIFEST = "manifest.json"
VOCAB_COPY = VOCAB  # the vocab the shards were made with, copied next to them
PARTIAL_DIR = ".nvlm-partial"  # resume state while a run is unfinished; removed at the end
KIND_PRETRAINING = "pretraining"

IS_NEXT, IS_RANDOM = 0, 1


def shard_name(index: int) -> str:
    return SHARD_PATTERN.format(index)


def schema(
    model: str, seq_len: int, max_predictions: int | None
) -> dict[str, tuple[np.dtype, tuple]]:
    """Dataset name -> (dtype, per-instance shape), in the order they are written."""
    out = {
        "input_ids": (np.dtype(np.int32), (seq_len,)),
        "input_mask": (np.dtype(np.int8), (seq_len,)),
        "segment_ids": (np.dtype(np.int8), (seq_len,)),
    }
    if model == "bert":
        out["masked_lm_positions"] = (np.dtype(np.int32), (max_predictions,))
        out["masked_lm_ids"] = (np.dtype(np.int32), (max_predictions,))
        out["next_sentence_labels"] = (np.dtype(np.int8), ())
    return out
