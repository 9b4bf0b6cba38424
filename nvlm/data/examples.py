"""A deterministic global order of training examples, addressable by position.

Position p (counting examples from the start of training, across epochs) maps to one example:
epoch = p // N; the epoch's order visits the parts (shards) in a seeded permutation and
shuffles within consecutive windows of `shuffle_buffer` examples (shuffling "by shard and within
a buffer", with no hidden iterator state). Because the order is a pure function of
(seed, position), a resumed run continues exactly where it stopped, and a global batch is the
same set of examples whatever the number of ranks: rank r takes every world-th example of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from queue import Queue

import numpy as np

from nvlm.data import integrity
from nvlm.errors import UserError


class ExampleSource:
    """Examples spread over parts, each part readable by contiguous row ranges.

    `parts` are objects with `__len__` and `read(start, stop) -> dict[str, np.ndarray]`.
    """

    def __init__(
        self, parts: Sequence, *, seed: int, shuffle: bool = True, shuffle_buffer: int = 10000
    ) -> None:
        self.parts = list(parts)
        self.sizes = np.array([len(p) for p in self.parts], dtype=np.int64)
        self.n = int(self.sizes.sum())
        if self.n == 0:
            raise ValueError("no examples")
        self.seed = seed
        self.shuffle = shuffle
        self.buffer = max(1, min(shuffle_buffer, self.n)) if shuffle else self.n
        self._cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.n

    # -- order -------------------------------------------------------------------------
    def _part_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.parts))
        return np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.parts))

    def _window(self, epoch: int, w: int) -> dict[str, np.ndarray]:
        """The examples of window w of `epoch`, already in their shuffled order."""
        key = (epoch, w)
        if key in self._cache:
            return self._cache[key]
        order = self._part_order(epoch)
        bounds = np.concatenate([[0], np.cumsum(self.sizes[order])])
        lo, hi = w * self.buffer, min((w + 1) * self.buffer, self.n)
        chunks = []
        for k, part_idx in enumerate(order):
            a, b = max(lo, bounds[k]), min(hi, bounds[k + 1])
            if a < b:
                chunks.append(self.parts[part_idx].read(int(a - bounds[k]), int(b - bounds[k])))
        data = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch, 1, w]).permutation(hi - lo)
            data = {name: arr[perm] for name, arr in data.items()}
        if len(self._cache) >= 2:  # we only ever walk forward: keep the current and next
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = data
        return data

    def gather(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """The examples at global positions (any order, any epochs)."""
        epochs, offsets = np.divmod(np.asarray(positions, dtype=np.int64), self.n)
        windows, within = np.divmod(offsets, self.buffer)
        out: dict[str, list] = {}
        rows = []
        for e, w, i in zip(epochs, windows, within, strict=True):
            rows.append((self._window(int(e), int(w)), int(i)))
        for name in rows[0][0]:
            out[name] = np.stack([data[name][i] for data, i in rows])
        return out

    # -- batches -----------------------------------------------------------------------
    def micro_batches(
        self,
        start: int,
        micro_batch: int,
        *,
        rank: int = 0,
        world: int = 1,
        prefetch: int = 4,
        positions: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Endless per-rank micro-batches from global position `start`.

        Each global micro-batch holds `micro_batch * world` consecutive positions; rank r takes
        positions r, r + world, ... of it. With `positions`, each batch also holds
        `example_positions` (int64 `[micro_batch]`): those global positions, unique per
        example and epoch, to key per-example random draws (ELECTRA's dynamic masking) so
        that they do not depend on the ranks and micro-batches an example lands in.
        """
        global_micro = micro_batch * world

        def produce(q: Queue) -> None:
            pos = start
            try:
                while True:
                    at = np.arange(pos + rank, pos + global_micro, world, dtype=np.int64)
                    batch = self.gather(at)
                    if positions:
                        batch["example_positions"] = at
                    q.put(batch)
                    pos += global_micro
            except BaseException as exc:  # surfaced in the consumer, never a silent hang
                q.put(exc)

        q: Queue = Queue(maxsize=prefetch)
        threading.Thread(target=produce, args=(q,), daemon=True).start()
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def prefetched_batches(
        self,
        start: int,
        micro_batch: int,
        *,
        rank: int = 0,
        world: int = 1,
        dtypes: dict | None = None,
        positions: bool = False,
    ) -> Iterator[dict]:
        """The same micro-batches as `micro_batches` (`positions` likewise), through a
        `tf.data.Dataset` that prefetches them (as tensors of `dtypes`).

        The order stays a pure function of (seed, position): tf.data only runs ahead of the
        training step, so a resumed run rebuilds the dataset from the saved position.

        A `UserError` of the parts (a corrupt shard) must reach the user as its one line, not
        as a TensorFlow error wrapping a traceback: the generator ends the dataset there
        instead, and this iterator raises the error in its place, after the batches before it.
        """
        import tensorflow as tf

        first = self.gather(np.arange(rank, micro_batch * world, world))
        if positions:
            first["example_positions"] = np.zeros(micro_batch, np.int64)
        dtypes = dtypes or {}
        signature = {
            k: tf.TensorSpec((micro_batch, *v.shape[1:]), dtypes.get(k, tf.as_dtype(v.dtype)))
            for k, v in first.items()
        }
        failure: list[UserError] = []

        def generate():
            try:
                for batch in self.micro_batches(
                    start, micro_batch, rank=rank, world=world, prefetch=2, positions=positions
                ):
                    yield {k: v.astype(signature[k].dtype.as_numpy_dtype) for k, v in batch.items()}
            except UserError as exc:
                failure.append(exc)

        ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
        yield from ds.prefetch(tf.data.AUTOTUNE)
        if failure:
            raise failure[0]
        raise RuntimeError("the micro-batch stream ended")  # endless unless a part failed


class ArrayPart:
    """An in-memory part (features computed on the fly, tests)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.n = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.n

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {k: v[start:stop] for k, v in self.arrays.items()}


class Hdf5Part:
    """One HDF5 shard; the file is opened lazily and kept open.

    `rows`: the row count the manifest records (checked at start), which spares opening every
    shard here. `bounds`: dataset -> exclusive upper bound of its values; each block read is
    checked against them in numpy, so a corrupt id ends the run naming this file instead of
    failing inside TensorFlow (nvlm.data.integrity). A read error names the file too.
    """

    def __init__(self, path, keys: Sequence[str], *, rows: int | None = None,
                 bounds: dict[str, int] | None = None) -> None:  # fmt: skip
        self.path = str(path)
        self.keys = list(keys)
        self.bounds = dict(bounds or {})
        self._file = None
        if rows is None:
            rows = int(self._open()[self.keys[0]].shape[0])
        self.n = int(rows)

    def __len__(self) -> int:
        return self.n

    def _open(self):
        import h5py

        if self._file is None:
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise integrity.read_error(Path(self.path), exc) from None
        return self._file

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        f = self._open()
        try:
            out = {k: f[k][start:stop] for k in self.keys}
        except (OSError, KeyError, RuntimeError) as exc:  # what h5py raises on a damaged file
            raise integrity.read_error(Path(self.path), exc) from None
        short = [k for k, v in out.items() if len(v) != stop - start]
        if short:
            raise integrity.corrupt(
                Path(self.path), f"has fewer rows in {short[0]} than the manifest records"
            )
        integrity.check_values(Path(self.path), out, self.bounds, first_row=start)
        return out
