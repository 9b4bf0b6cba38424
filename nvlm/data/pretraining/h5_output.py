"""`H5Output`: an HDF5 file written so that a full disk is one clear line, never a crash.

HDF5 handles a failed write badly: h5py on a full disk raises from deep inside the library
and then crashes the interpreter (segmentation fault) when the file is closed or collected.
So the library never sees a write fail: it writes through a Python file object (h5py's
`fileobj` driver) that does the writes itself, remembers the first error, and from then on
keeps the library's writes in memory (reads see them), so that HDF5 finishes its call
normally. The caller checks `failed` after each batch (`check`) and stops with `disk_full`
naming the file and the space it needs; the temporary file is removed.

The file is written under a hidden temporary name next to its final name (unique per process,
so two writers never share one) and renamed by `finish` when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from nvlm.data.checksum import sha256_file
from nvlm.errors import RunFailed
from nvlm.outputs import disk_full, is_disk_full


class _Sink:
    """The file object HDF5 writes through (seek/tell/read/write/truncate/flush)."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._pos = 0
        self.error: OSError | None = None
        self.extent = 0  # end of the furthest write attempted
        self._held: list[tuple[int, bytes]] = []  # writes after a failure, in order

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            self._pos = max(os.fstat(self._raw.fileno()).st_size, self.extent) + offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self.error is None:
            try:
                self._raw.seek(self._pos)
                rest = view
                while len(rest):
                    rest = rest[self._raw.write(rest) :]
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            self._held.append((self._pos, view.tobytes()))
        self._pos += size
        self.extent = max(self.extent, self._pos)
        return size

    def read(self, size: int = -1) -> bytes:
        self._raw.seek(self._pos)
        data = bytearray(self._raw.read(size) or b"")
        if self._held and size > 0:
            data.extend(bytes(size - len(data)))
            for addr, held in self._held:
                lo, hi = max(addr, self._pos), min(addr + len(held), self._pos + size)
                if lo < hi:
                    data[lo - self._pos : hi - self._pos] = held[lo - addr : hi - addr]
        self._pos += len(data)
        return bytes(data)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                self._raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return size

    def flush(self) -> None:
        pass  # the raw file is unbuffered


class H5Output:
    """An HDF5 file being written for `path`.

    Args:
        path: the final file name; the data goes to `.<name>.<pid>.tmp` beside it until
            `finish()`.
        shown: the name messages give the file, if not `path` (a file made in a staging
            directory is named where it will end up).

    Example:
        >>> out = H5Output(Path("train.hdf5"))  # doctest: +SKIP
        >>> out.file.create_dataset("ids", data=ids); out.check()
        >>> digest = out.finish()
    """

    def __init__(self, path: Path, shown: Path | None = None) -> None:
        self.path = Path(path)
        self.shown = self.path if shown is None else Path(shown)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._raw = open(self.tmp, "w+b", buffering=0)  # noqa: SIM115 - closed by finish/abort
        self._sink = _Sink(self._raw)
        try:
            self.file = h5py.File(self._sink, "w")
        except BaseException:
            self._close_raw()
            raise

    @property
    def failed(self) -> bool:
        return self._sink.error is not None

    def check(self, needed: int | None = None) -> None:
        """Stop if a write failed: remove the file and raise `disk_full` (or `RunFailed` for
        another I/O error). `needed`, the writer's estimate of the whole file's size, goes
        into the message."""
        if not self.failed:
            return
        error, written = self._sink.error, self._sink.extent
        self.abort()
        if is_disk_full(error):
            raise disk_full(self.shown, written, needed=needed) from error
        raise RunFailed(f"writing {self.shown} failed: {error.strerror or error}") from error

    def finish(self) -> str:
        """Close, check, rename to the final name; return the file's sha256."""
        try:
            self.file.close()
        except Exception:
            self.check()  # a failed write explains the error: say that instead
            raise
        self.check()
        try:
            os.fsync(self._raw.fileno())  # a network file system may only fail here
        except OSError as exc:
            self._sink.error = exc
            self.check()
        self._close_raw(unlink=False)
        digest = sha256_file(self.tmp)
        os.replace(self.tmp, self.path)
        return digest

    def abort(self) -> None:
        """Close and remove the temporary file (idempotent)."""
        try:
            self.file.close()
        except Exception:
            pass  # the file is discarded; HDF5's complaints about it do not matter
        self._close_raw()

    def _close_raw(self, unlink: bool = True) -> None:
        if not self._raw.closed:
            self._raw.close()
        if unlink:
            self.tmp.unlink(missing_ok=True)
