"""Child processes we own: spawn, wait until ready, stop, and clean up after a killed owner."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 20


class EmbeddedStartError(RuntimeError):
    """A child process did not come up; the message says why and where its log is."""


@dataclass(frozen=True)
class RunAs:
    """The account a child runs under (PostgreSQL refuses to run as root)."""

    uid: int
    gid: int


def _parent_death_hook(death_signal: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel signal the child when its parent dies.

    Linux delivers the signal when the *thread* that forked the child exits, so spawn from a
    long-lived thread (the main thread). The hook runs after the uid switch, which would
    otherwise clear the setting. Elsewhere there is no such facility: return None.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: no dlopen in the child
    parent_pid = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), death_signal)

    return hook


def spawn_child(
    argv: Sequence[str],
    log_path: Path,
    *,
    death_signal: signal.Signals,
    run_as: RunAs | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, output appended to log_path.

    Its own group keeps a terminal's Ctrl-C away from it: the owner stops its children in
    order (server first, stores last) instead of everything dying at once.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_parent_death_hook(death_signal),
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            env=env,
            close_fds=True,
        )


def stop_child(
    process: subprocess.Popen[bytes],
    stop_signal: signal.Signals,
    timeout_s: float,
    escalate_signal: signal.Signals = signal.SIGKILL,
) -> None:
    """Ask the child to stop, wait up to timeout_s, then send escalate_signal (and SIGKILL)."""
    for sig, wait_s in ((stop_signal, timeout_s), (escalate_signal, timeout_s)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
    if process.poll() is None:
        process.kill()
        process.wait()


def stop_leftover(pid: int, marker: str, stop_signal: signal.Signals, timeout_s: float) -> bool:
    """Stop a process left running by an owner that was killed; return whether one was found.

    Only a process whose command line contains `marker` (our data directory) is touched, so a
    recycled pid that now belongs to something else is left alone.
    """
    try:
        process = psutil.Process(pid)
        if not any(marker in part for part in process.cmdline()):
            return False
        process.send_signal(stop_signal)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    try:
        process.wait(timeout_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
            process.wait(timeout_s)
    return True


def wait_until_ready(
    is_ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    *,
    what: str,
    log_path: Path,
    timeout_s: float,
    poll_s: float = 0.05,
) -> None:
    """Poll is_ready until it holds; fail early (with the log's tail) if the child exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise EmbeddedStartError(
                f"{what} exited with code {process.returncode} during start; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        if is_ready():
            return
        if time.monotonic() > deadline:
            raise EmbeddedStartError(
                f"{what} was not ready after {timeout_s:.0f} s; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(poll_s)


def log_tail(log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
