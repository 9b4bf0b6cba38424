"""`ShardWriter`: append instance batches to one HDF5 shard, then publish it atomically."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from nvlm.data.atomic import sha256_file

# Rows per HDF5 chunk: a reader pulling a few hundred rows touches one or two chunks, and the
# per-chunk overhead stays small for shards of millions of rows.
CHUNK_ROWS = 1024


class ShardWriter:
    """Write datasets of a fixed schema row batch by row batch to `<path>.tmp`; `finish()` moves
    the file to `path` and returns its sha256.

    No compression: the instance arrays are small integers with little redundancy once masked,
    and uncompressed chunks keep both writing and random reads during training cheap.
    `track_times=False` keeps timestamps out of the file, so identical content gives identical
    bytes (the determinism tests compare sha256).

    Args:
        path: final file name (shard-00007.hdf5).
        schema: dataset name -> (dtype, per-row shape), from `shard_format.schema`.
    """

    def __init__(self, path: Path, schema: dict[str, tuple[np.dtype, tuple]]) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.rows = 0
        self._file = h5py.File(self.tmp, "w")
        self._sets = {}
        for name, (dtype, shape) in schema.items():
            self._sets[name] = self._file.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(CHUNK_ROWS, *shape),
                track_times=False,
            )

    def append(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(next(iter(arrays.values())))
        for name, dset in self._sets.items():
            dset.resize(self.rows + n, axis=0)
            dset[self.rows :] = arrays[name].astype(dset.dtype, copy=False)
        self.rows += n

    def finish(self) -> str:
        self._file.close()
        digest = sha256_file(self.tmp)
        os.replace(self.tmp, self.path)
        return digest

    def abort(self) -> None:
        try:
            self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)
