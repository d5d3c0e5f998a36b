"""An exclusive, advisory lock on a data directory, released when its holder dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class DataDirInUse(RuntimeError):
    """Another live process holds the data directory."""

    def __init__(self, data_dir: Path, holder_pid: int | None) -> None:
        holder = f"process {holder_pid}" if holder_pid else "another process"
        super().__init__(
            f"{data_dir} is in use by {holder} (another `modelreg dev`?); stop it first "
            "or choose another --data-dir"
        )
        self.data_dir = data_dir
        self.holder_pid = holder_pid


class DataDirLock:
    """flock(2) on `<data_dir>/<name>`; the kernel drops it when the holder exits, even by SIGKILL.

    The file holds the holder's pid so that a refused process can say who holds it.
    """

    def __init__(self, data_dir: Path, name: str = "owner.lock") -> None:
        self.data_dir = data_dir
        self.path = data_dir / name
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Opened without truncation: truncating before we hold the lock would erase the
        # holder's pid.
        lock_file = self.path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(lock_file)
            lock_file.close()
            raise DataDirInUse(self.data_dir, holder) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._file = lock_file

    def release(self) -> None:
        if self._file is None:
            return
        self._file.close()  # closing the descriptor releases the flock
        self._file = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(lock_file: IO[str]) -> int | None:
    lock_file.seek(0)
    text = lock_file.read().strip()
    return int(text) if text.isdigit() else None
