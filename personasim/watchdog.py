"""A run's child processes end with it, even when it is killed with SIGKILL.

`personasim run` starts `python -m personasim.watchdog PID` first. The watchdog notes the run's
descendants (from /proc) every half second; once the run's process is gone, it stops each one it
saw (SIGTERM, then SIGKILL after a grace), checking each process's start time so that a recycled
PID is never touched. That covers what personasim cannot start with PR_SET_PDEATHSIG itself:
Prefect's embedded API server, a local Dask or Ray cluster. Linux only (/proc); elsewhere it is
not started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")
Process = tuple[int, int]  # (pid, start time in clock ticks since boot): one process, never a recycled pid


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[Process]:
    """Every live process below `root`, as (pid, start time)."""
    children: dict[int, list[Process]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: set[Process] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child[0])
    return found


def _alive(process: Process) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[1] == process[1]


def stop(processes: set[Process], grace: float = 3.0) -> None:
    """SIGTERM each, then SIGKILL whatever is still running after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            if _alive(process):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(process[0], sig)
        deadline = time.monotonic() + grace
        while any(_alive(p) for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)


def end(process: subprocess.Popen[bytes], grace: float) -> None:
    """Stop a child this process started: SIGTERM, SIGKILL after `grace` seconds, reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def watch(run_pid: int, interval: float = 0.5) -> None:
    """Until the run's process ends, keep track of its descendants; then stop them."""
    me = os.getpid()
    seen: set[Process] = set()
    while os.getppid() == run_pid:
        seen = {p for p in seen if _alive(p)} | {p for p in descendants(run_pid) if p[0] != me}
        time.sleep(interval)
    stop(seen)


_started: dict[int, subprocess.Popen[bytes]] = {}  # by pid: one watchdog per process, even after a fork


def start() -> subprocess.Popen[bytes] | None:
    """The watchdog for this process (started once: it watches every child, whichever run started
    it), or None where there is no /proc."""
    if not (PROC / "self" / "stat").exists():
        return None
    pid = os.getpid()
    if pid not in _started or _started[pid].poll() is not None:
        _started[pid] = subprocess.Popen([sys.executable, "-m", "personasim.watchdog", str(pid)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
    return _started[pid]


if __name__ == "__main__":
    watch(int(sys.argv[1]))
