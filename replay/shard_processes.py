"""The first pass of a sharded rebuild, in parallel: one OS process per shard (at most one
per core at a time) replays its shard into places of its own, beside the live models.

A SQLite or DuckDB file takes one writing process, so shards cannot share the rebuild
place; each process writes its own (``part_tag``) and the rebuild merges them into the one
rebuild place afterwards (``ReadModelHome.merge``). A process that fails fails the whole
rebuild with one line naming its shard, before anything is merged or swapped.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from replay.ledger_prefix import ProgressHook, project_to

if TYPE_CHECKING:
    from replay.targets import ReplaySite

# How often the parent reports the shards' progress while it waits for them.
_PROGRESS_EVERY_S = 0.2


@dataclass(frozen=True)
class _ShardJob:
    """What one shard's process rebuilds: ``names`` from ``shard`` into part_tag(tag)."""

    site: ReplaySite
    names: list[str]
    tag: str
    shard: int
    batch_size: int


class ShardRebuildFailed(RuntimeError):
    """A shard's rebuild process failed; nothing was merged or swapped."""


def part_tag(tag: str, shard: int) -> str:
    """The tag of the places shard ``shard`` is rebuilt into (a file or schema name part)."""
    return f"{tag}_{shard}"


def worker_count(shards: int) -> int:
    """How many shard processes run at once: one per shard, at most one per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(shards, cores or 1))


def _context() -> multiprocessing.context.BaseContext:
    # Fork: the child has the parent's modules already (a spawned one spends about 0.4 s
    # importing them again). The parent forks before it opens any database or ledger.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def rebuild_shards(
    site: ReplaySite,
    names: Sequence[str],
    tag: str,
    *,
    batch_size: int,
    progress: ProgressHook | None = None,
) -> None:
    """Rebuild every shard's part of the named read models (``names``) in a process of its
    own, up to the shard's end as the process finds it; ShardRebuildFailed names the first
    shard whose process failed (the others are stopped)."""
    shard_names = site.shard_names()
    shards = len(shard_names)
    child_site = site.for_another_process()
    context = _context()
    counters = context.Array("q", 2 * shards, lock=False)  # reached, target per shard
    pending = list(range(shards))
    running: dict[int, tuple[BaseProcess, Connection]] = {}
    limit = worker_count(shards)
    try:
        while pending or running:
            while pending and len(running) < limit:
                shard = pending.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                job = _ShardJob(child_site, list(names), tag, shard, batch_size)
                process = context.Process(  # type: ignore[attr-defined]
                    target=_rebuild_shard,
                    args=(job, counters, sender),
                    name=f"evledger-rebuild-shard-{shard}",
                )
                process.start()
                sender.close()  # the child's end: the parent keeps only its own
                running[shard] = (process, receiver)
            wait([process.sentinel for process, _ in running.values()], _PROGRESS_EVERY_S)
            if progress is not None:
                progress(sum(counters[0::2]), max(sum(counters[1::2]), 1))
            for shard, (process, receiver) in list(running.items()):
                if process.exitcode is None:
                    continue
                del running[shard]
                error = _error_of(process, receiver)
                receiver.close()
                if error is not None:
                    raise ShardRebuildFailed(
                        f"rebuilding shard {shard} ({shard_names[shard]}) failed: {error}; "
                        "nothing was swapped"
                    )
    finally:
        for process, receiver in running.values():
            process.terminate()
            process.join()
            receiver.close()


def _error_of(process: BaseProcess, receiver: Connection) -> str | None:
    """Why a finished shard process failed, in one line (None: it succeeded)."""
    process.join()
    if process.exitcode == 0:
        return None
    if receiver.poll():
        return str(receiver.recv())
    exitcode = process.exitcode or 0
    if exitcode < 0:
        return f"its process was killed by {signal.Signals(-exitcode).name}"
    return f"its process exited with status {exitcode}"


def _rebuild_shard(job: _ShardJob, counters: Any, sender: Connection) -> None:
    """In the shard's process: project its ledger into its own places, then close them
    (the parent merges them). A failure is sent to the parent as one line."""
    site, shard = job.site, job.shard
    try:
        groups = site.groups(job.names)
        places = [group.home.rebuild_place(part_tag(job.tag, shard)) for group in groups]
        try:
            with site.ledger_source(shard) as source:
                models = [
                    model_class(place.db).for_shard(shard)
                    for group, place in zip(groups, places, strict=True)
                    for model_class in group.classes
                ]

                def report(reached: int, target: int) -> None:
                    counters[2 * shard], counters[2 * shard + 1] = reached, target

                project_to(source, models, batch_size=job.batch_size, progress=report)
        finally:
            for place in places:
                place.db.close()
    except Exception as error:
        text = str(error).strip()
        sender.send(text.splitlines()[0] if text else repr(error))
        raise SystemExit(1) from None
    finally:
        sender.close()
