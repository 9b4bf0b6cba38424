"""`ShardWriter`: append instance batches to one HDF5 shard, then publish it atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvlm.data.pretraining.h5_output import H5Output

# Rows per HDF5 chunk: a reader pulling a few hundred rows touches one or two chunks, and the
# per-chunk overhead stays small for shards of millions of rows.
CHUNK_ROWS = 1024


class ShardWriter:
    """Write datasets of a fixed schema row batch by row batch to a temporary file (`H5Output`);
    `finish()` moves the file to `path` and returns its sha256.

    No compression: the instance arrays are small integers with little redundancy once masked,
    and uncompressed chunks keep both writing and random reads during training cheap.
    `track_times=False` keeps timestamps out of the file, so identical content gives identical
    bytes (the determinism tests compare sha256). A full disk stops the shard with one line
    (`nvlm.outputs.disk_full`) and removes the temporary file.

    Args:
        path: final file name (shard-00007.hdf5).
        schema: dataset name -> (dtype, per-row shape), from `shard_format.schema`.
    """

    def __init__(self, path: Path, schema: dict[str, tuple[np.dtype, tuple]]) -> None:
        self.path = path
        self.rows = 0
        self._out = H5Output(path)
        self.tmp = self._out.tmp
        self.row_bytes = sum(
            dtype.itemsize * int(np.prod(shape)) for dtype, shape in schema.values()
        )
        self._sets = {}
        for name, (dtype, shape) in schema.items():
            self._sets[name] = self._out.file.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(CHUNK_ROWS, *shape),
                track_times=False,
            )

    def append(self, arrays: dict[str, np.ndarray], done: float | None = None) -> None:
        """Add rows; `done` (0-1], the share of the shard's work finished with them, sizes the
        estimate a full disk reports."""
        n = len(next(iter(arrays.values())))
        needed = int(self.row_bytes * (self.rows + n) / done) if done else None
        try:
            for name, dset in self._sets.items():
                dset.resize(self.rows + n, axis=0)
                dset[self.rows :] = arrays[name].astype(dset.dtype, copy=False)
        except Exception:
            self._out.check(needed)  # a failed write explains the error: report that instead
            raise
        self._out.check(needed)
        self.rows += n

    def finish(self) -> str:
        return self._out.finish()

    def abort(self) -> None:
        self._out.abort()
