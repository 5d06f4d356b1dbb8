"""Run a server as a child process, and stop the whole tree it grows when this process is told
to stop: ``icans serve`` runs ``bentoml serve`` so, and ``icans tracking start`` the ``mlflow
server`` (``python -m ops.supervisor --stop-timeout S -- COMMAND...``).

Why. A server is several processes: ``bentoml serve`` is an arbiter whose workers answer,
``mlflow server`` a Python process that runs uvicorn, itself a supervisor of workers. A signal
sent to the process a user or a supervisor knows (``kill PID``, systemd with
``KillMode=process``, a test harness) used to stop that one process and leave the rest running
and holding the port; only Ctrl-C in a terminal (a signal to the whole process group) stopped
everything.

What a stop does (:func:`stop_tree`), on SIGTERM, SIGINT or SIGHUP to this process:

1. the processes of the tree are recorded (the child and its descendants, as the operating
   system reports them);
2. the signal is forwarded to the child alone (SIGHUP as SIGTERM), for a graceful drain: the
   child stops its own workers (a BentoML arbiter lets each finish its requests). A process of
   the tree whose parent has gone (``mlflow server``'s uvicorn once its launcher has died) has
   nothing left to stop it and gets SIGTERM itself;
3. whatever of the tree is still alive after ``stop_timeout_s`` (the drain took too long, a
   worker hangs) is killed (SIGKILL), and this process waits for it to be gone.

So every process started is gone within ``stop_timeout_s`` plus a moment, and the port is free.
The child runs in a session (process group) of its own, so a Ctrl-C in a terminal reaches this
process only and goes through the same steps. When the child ends by itself, what it left
behind in its group is stopped the same way. The exit code is the child's, or
``128 + signal`` after a stop asked by a signal (143 for SIGTERM, 130 for SIGINT), as a shell
reports a process ended by that signal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

import psutil

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KILL_WAIT_S = 5.0  # after SIGKILL: the kernel frees a killed process at once


def running(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs. A zombie does not, unless threads of it still do: Linux
    shows a process whose main thread has ended as a zombie while its other threads finish
    (they may still hold its port), and its parent cannot reap it before they have."""
    try:
        if not proc.is_running():
            return False
        if proc.status() != psutil.STATUS_ZOMBIE:
            return True
        return len(os.listdir(f"/proc/{proc.pid}/task")) > 1
    except (psutil.Error, OSError):
        return False


def _alive(
    procs: list[psutil.Process], child: subprocess.Popen | None = None
) -> list[psutil.Process]:
    """Those of ``procs`` that run; our own ``child`` until it is reaped."""
    out = []
    for proc in procs:
        if child is not None and proc.pid == child.pid:
            if child.poll() is None:
                out.append(proc)
        elif running(proc):
            out.append(proc)
    return out


def _tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and its descendants now (none if it has gone)."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def stop_tree(
    child: subprocess.Popen | int,
    signum: int = signal.SIGTERM,
    timeout_s: float = 10.0,
    also: Sequence[psutil.Process] = (),
) -> list[int]:
    """Stop ``child`` and every process under it (the module docstring's steps 1-3): forward
    ``signum`` to the child, SIGTERM to a process of the tree left without its parent, SIGKILL
    to what is alive after ``timeout_s``. ``also``: more processes to stop with it (the members
    of its process group already recorded). Returns the process ids that had to be killed."""
    popen = child if isinstance(child, subprocess.Popen) else None
    pid = child.pid if isinstance(child, subprocess.Popen) else child
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        root = None
    tree = {p.pid: p for p in [*(_tree(root) if root else []), *also]}
    forward = signal.SIGTERM if signum == signal.SIGHUP else signum
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, forward)
    signalled = {pid}
    deadline = time.monotonic() + timeout_s
    while True:
        alive = _alive(list(tree.values()), popen)
        if not alive or time.monotonic() >= deadline:
            break
        live_pids = {p.pid for p in alive}
        for proc in alive:
            for grandchild in _tree(proc)[1:]:  # a worker started during the drain
                tree.setdefault(grandchild.pid, grandchild)
            with contextlib.suppress(psutil.Error):
                if proc.pid not in signalled and proc.ppid() not in live_pids:
                    proc.send_signal(signal.SIGTERM)  # its manager has gone: nothing else will
                    signalled.add(proc.pid)
        time.sleep(0.05)
    killed = _alive(list(tree.values()), popen)
    for proc in killed:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    deadline = time.monotonic() + KILL_WAIT_S
    while _alive(killed, popen) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p.pid for p in killed]


def terminate(procs: Sequence[psutil.Process], timeout_s: float) -> None:
    """SIGTERM to each of ``procs``, SIGKILL to those still running after ``timeout_s``."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    for signum, wait_s in ((signal.SIGKILL, timeout_s), (None, KILL_WAIT_S)):
        deadline = time.monotonic() + wait_s
        while _alive(list(procs)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if signum is None:
            return
        for proc in _alive(list(procs)):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signum)


def group_members(pgid: int) -> list[psutil.Process]:
    """The live processes of process group ``pgid`` (what a child in its own session started,
    even those its parent no longer knows of)."""
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) == pgid and running(proc):
                members.append(proc)
    return members


def run(
    command: Sequence[str],
    env: dict[str, str] | None = None,
    stop_timeout_s: float = 10.0,
    new_session: bool = True,
    **popen_kwargs,
) -> int:
    """Run ``command`` until it ends or this process gets SIGTERM, SIGINT or SIGHUP (then
    :func:`stop_tree`); returns its exit code, or ``128 + signal`` after a stop. The child runs
    in a session of its own, or with ``new_session=False`` in this process's group (for a
    caller that stops the group: :mod:`ops.tracking_server`). In the main thread only (signal
    handlers)."""
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        child = subprocess.Popen(
            list(command), env=env, start_new_session=new_session, **popen_kwargs
        )
        try:
            pgid = os.getpgid(child.pid)
        except ProcessLookupError:  # gone already
            pgid = None
        while child.poll() is None and not received:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
        me = os.getpid()
        left = [p for p in group_members(pgid) if p.pid != me] if pgid is not None else []
        if received:
            stop_tree(child, received[0], stop_timeout_s, also=left)
            return 128 + received[0]
        if left:  # it ended by itself, leaving some of its processes behind
            terminate(left, stop_timeout_s)
        return child.returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ops.supervisor [--stop-timeout S] [--same-group] -- COMMAND...``:
    :func:`run`."""
    parser = argparse.ArgumentParser(prog="python -m ops.supervisor", description=__doc__)
    parser.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument(
        "--same-group", action="store_true", help="run COMMAND in this process's group"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run, after --")
    return run(command, stop_timeout_s=args.stop_timeout, new_session=not args.same_group)


if __name__ == "__main__":
    sys.exit(main())
