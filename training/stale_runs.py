"""Training runs left RUNNING by a process that died, found and closed.

A training process killed outright (SIGKILL, a machine that lost power, an out-of-memory kill)
cannot end its MLflow run: the run stays RUNNING for ever and may have registered a version
without its report or alias. ``icans train`` and ``icans recalibrate`` therefore record who runs
each run (:func:`owner_tags`: host, process id, process start time) and, before they start,
close the runs of their experiment whose owner is gone (:func:`close_stale_runs`):

* a run owned by a process of this host is stale when that process no longer exists, or when
  its id now belongs to a process started at another time (the id was reused);
* a run owned by another host (a shared tracking server) cannot be checked that way: it is
  stale only once it has been running longer than ``stale_after_hours`` (no training of this
  product takes that long), so a colleague's live run is never closed;
* a run without owner tags (started by another tool) is treated like another host's.

A stale run is marked FAILED with a tag saying why. A model version registered by it and not
holding an alias is deleted (it is half-registered: its report or alias never came); one that
holds an alias is kept and reported, since serving may already use it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import psutil
from mlflow import MlflowClient

HOST, PID, PID_STARTED = "icans.host", "icans.pid", "icans.pid_started"
STALE_REASON = "icans.stale_reason"


def owner_tags() -> dict[str, str]:
    """Tags naming the process that runs this training run."""
    me = psutil.Process(os.getpid())
    return {HOST: socket.gethostname(), PID: str(me.pid), PID_STARTED: f"{me.create_time():.3f}"}


@dataclass(frozen=True)
class ClosedRun:
    run_id: str
    reason: str
    deleted_versions: tuple[str, ...]
    kept_versions: tuple[str, ...]  # held an alias: left in place

    def summary(self) -> str:
        text = f"run {self.run_id} marked FAILED ({self.reason})"
        if self.deleted_versions:
            text += f"; half-registered version(s) {', '.join(self.deleted_versions)} deleted"
        if self.kept_versions:
            text += f"; version(s) {', '.join(self.kept_versions)} hold an alias and were kept"
        return text


def stale_reason(tags: dict[str, str], start_ms: int, now_s: float, after_hours: float) -> str:
    """Why a RUNNING run with these tags is stale, or '' when it may still be alive."""
    if tags.get(HOST) == socket.gethostname() and PID in tags:
        pid = int(tags[PID])
        try:
            started = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            return f"its process {pid} on this host is gone"
        if abs(started - float(tags.get(PID_STARTED, "nan"))) > 1.0:
            return f"its process {pid} on this host is gone (the id now names another process)"
        return ""
    hours = (now_s - start_ms / 1000.0) / 3600.0
    if hours > after_hours:
        where = f"on host {tags[HOST]}" if HOST in tags else "without an owner"
        return f"running {hours:.1f} h {where}, longer than {after_hours:g} h"
    return ""


def close_stale_runs(
    client: MlflowClient, experiment_id: str, model_name: str, after_hours: float
) -> list[ClosedRun]:
    """Mark the experiment's stale RUNNING runs FAILED and delete their half-registered
    versions (see the module docstring); the runs closed."""
    now = time.time()
    closed = []
    running = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'")
    for run in running:
        reason = stale_reason(run.data.tags, run.info.start_time, now, after_hours)
        if not reason:
            continue
        deleted, kept = [], []
        query = f"name = '{model_name}' and run_id = '{run.info.run_id}'"
        versions = client.search_model_versions(query)
        aliased = _aliased(client, model_name) if versions else set()
        for mv in versions:
            if str(mv.version) in aliased:
                kept.append(str(mv.version))
            else:
                client.delete_model_version(model_name, str(mv.version))
                deleted.append(str(mv.version))
        client.set_tag(run.info.run_id, STALE_REASON, reason)
        client.set_terminated(run.info.run_id, status="FAILED")
        closed.append(ClosedRun(run.info.run_id, reason, tuple(deleted), tuple(kept)))
    return closed


def _aliased(client: MlflowClient, model_name: str) -> set[str]:
    """The versions an alias points at (a search of versions does not return their aliases)."""
    return {str(v) for v in client.get_registered_model(model_name).aliases.values()}
