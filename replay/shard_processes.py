"""The parallel part of a rebuild: worker processes (at most one per usable core) that
replay the ledger into places of their own, then checksum the rebuilt and live tables for
the comparison with the live models.

The work is split into units: one per shard, each rebuilding every read-model group of its
shard, or, when there are cores for every shard and group, one per shard and group
(``ModelGroup``: the views' database, analytics), so that a one-shard ledger's groups are
rebuilt side by side. A shard's group units share one read of it: the rebuild process reads
each batch once and hands it to each of them (replay/ledger_feed.py), which decode it.

A SQLite or DuckDB file takes one writing process, so shards cannot share the rebuild
place: shard 0 is rebuilt into the rebuild place itself, every other shard into its own
(``part_tag``), and the rebuild merges those into the rebuild place
(``ReadModelHome.merge``); each group has places of its own, so two units never write one.
The workers are forked before the parent opens any database or ledger, so they start with
nothing open and share the modules the parent has imported; a worker with several units
rebuilds them in turn. A worker that fails before its units are done fails the whole
rebuild with one line naming its unit, before anything is swapped (one that dies before its
first unit too); one that dies after them (killed while it checksums) leaves its checksum
tasks to the parent, which takes every task no live worker has announced taking (a worker
announces each before working on it) and every later one, and the rebuild goes on. From then
on the live workers take no task (they drop those still queued, saying so): only the parent
opens the places, whose live side it may hold next. A worker whose rebuild process is gone
(killed, or ended by SIGTERM) ends too: at its next batch, or when it waits for a checksum
task.

The workers also take the compare's checksums, from one queue of tasks they share: each
group's rebuilt tables once the parent has caught it up (while the others still rebuild),
then its live models' (read-only), given the rebuilt checksums: a live table whose
fingerprint is its rebuilt twin's has its checksum (replay/checksum.py), so only a table
that differs is checksummed row by row. A live model the parent holds still is checksummed
by the workers unless it is a DuckDB file (one process may open it): then by the parent.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from projections.gc_pacing import PROJECTOR_YOUNG_THRESHOLD, fewer_collections
from projections.tracking import tracked_positions
from replay.checksum import TableChecksum, table_checksum
from replay.ledger_feed import FeedSource, LedgerFeed
from replay.ledger_prefix import ProgressHook, project_to

if TYPE_CHECKING:
    from replay.targets import ReadModelHome, ReplaySite

log = logging.getLogger("evledger.replay")

# How often the parent reports the shards' progress while it waits for them.
_PROGRESS_EVERY_S = 0.2


class ShardRebuildFailed(RuntimeError):
    """A rebuild worker process failed (the rebuild says what it had swapped by then)."""


def part_tag(tag: str, shard: int) -> str:
    """The tag of the places shard ``shard`` is rebuilt into (a file or schema name part):
    shard 0's are the rebuild places themselves, so only the other shards' rows are
    copied by the merge."""
    return tag if shard == 0 else f"{tag}_{shard}"


def usable_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


@dataclass(frozen=True)
class Unit:
    """One worker's piece of a rebuild: ``shard``'s ledger into the places of ``group``
    (an index into ``site.groups(names)``), or of every group when None."""

    shard: int
    group: int | None = None


def work_units(shards: int, groups: int, cores: int | None = None) -> list[Unit]:
    """The units of a rebuild of ``groups`` groups over ``shards`` shards: a shard's groups
    apart only when every unit has a core of its own (each unit reads its shard for itself:
    a worker with two units of one shard would read it twice, in turn), so one shard on one
    core is one unit, which the rebuild does in its own process."""
    if groups > 1 and shards * groups <= (cores or usable_cores()):
        return [Unit(shard, group) for shard in range(shards) for group in range(groups)]
    return [Unit(shard) for shard in range(shards)]


def worker_count(units: int) -> int:
    """How many worker processes: one per unit, at most one per core."""
    return min(units, usable_cores())


def worker_units(units: Sequence[Unit], count: int) -> list[list[int]]:
    """Each of ``count`` workers' units (indices into ``units``), every ``count``-th. Two
    units of one shard in one worker would wait for each other for ever (the shard's feed
    keeps its units in step, and a worker does its units in turn): refused."""
    shares = [list(range(len(units)))[worker::count] for worker in range(count)]
    for share in shares:
        shards = [units[unit].shard for unit in share]
        if len(set(shards)) != len(shards):
            raise ValueError(f"a worker would have two units of one shard: {shares}")
    return shares


@dataclass(frozen=True)
class _Job:
    """What one worker rebuilds: each of ``units`` (indices into ``all_units``) into the
    places part_tag(tag, shard), and whose rebuild places (``tag``) it checksums
    afterwards."""

    site: ReplaySite
    names: list[str]
    tag: str
    all_units: list[Unit]
    units: list[int]
    batch_size: int
    tasks: _Tasks
    # The rebuild's process: a worker whose parent has changed stops rebuilding.
    parent: int
    # By shard, where its units are several (one per group): the one read of it they share.
    feeds: dict[int, LedgerFeed]

    def feed_slot(self, unit: int) -> int:
        """Which of its shard's feed ends is unit ``unit``'s."""
        shard = self.all_units[unit].shard
        return [i for i, u in enumerate(self.all_units) if u.shard == shard].index(unit)


class _Tasks:
    """The checksum tasks the workers share: one pipe the parent writes and the workers
    read, one at a time (a lock). Each worker closes its copy of the write end, so once the
    parent is gone (killed, or ended by a signal it does not handle) a worker waiting for a
    task sees the end of the pipe and ends, instead of waiting for ever."""

    def __init__(self, context: Any) -> None:
        self._reader, self._writer = context.Pipe(duplex=False)
        self._lock = context.Lock()
        # Set by the parent once it took a dead worker's tasks over: a worker drops every
        # task it takes from then on (it checks after announcing the task, the parent sets
        # it before reading the announcements, so each task is either seen taken or dropped).
        self._taken_over = context.Value("b", 0, lock=False)

    def take_over(self) -> None:
        self._taken_over.value = 1

    def taken_over(self) -> bool:
        return bool(self._taken_over.value)

    def put(self, task: tuple[Any, ...]) -> None:
        self._writer.send(task)

    def get(self, announce: Callable[[tuple[Any, ...]], None]) -> tuple[Any, ...] | None:
        """The next task, announced (``announce``) before the next worker can take one, or
        None once the parent is gone."""
        with self._lock:
            try:
                task: tuple[Any, ...] = self._reader.recv()
            except (EOFError, OSError):
                return None
            announce(task)
        return task

    def in_worker(self) -> None:
        """In a worker: only the parent writes."""
        self._writer.close()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class ShardWorkers:
    """The worker processes of one rebuild, sharing ``units`` out; ``close`` stops them
    (a context manager). Checksums asked of them are tasks on a queue they share, a share
    of a request's tables each (one connection per share: opening a DuckDB file is not
    free): the first worker done with its units takes them while the others still
    rebuild."""

    def __init__(
        self,
        site: ReplaySite,
        names: Sequence[str],
        tag: str,
        batch_size: int,
        units: Sequence[Unit],
    ) -> None:
        self.shard_names = site.shard_names()
        self.group_names = [", ".join(group.names) for group in site.groups(names)]
        self.units = list(units)
        _preload()
        # Fork: a child has the parent's modules already (a spawned one spends about 0.4 s
        # of CPU importing them again).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        count = worker_count(len(self.units))
        shares_of = worker_units(self.units, count)  # before any pipe or process is made
        # Per unit: events reached, events aimed at, and 1 once rebuilt.
        self._counters = context.Array("q", 3 * len(self.units), lock=False)
        # Per worker: the unit it is rebuilding (-1: none), to name it if the worker dies.
        self._current = context.Array("q", [-1] * count, lock=False)
        self._tasks = _Tasks(context)
        self._feeds = {
            shard: LedgerFeed(context, shard, len(ours))
            for shard in range(len(self.shard_names))
            if len(ours := [unit for unit in self.units if unit.shard == shard]) > 1
        }
        self._workers: list[tuple[BaseProcess, Connection]] = []
        # Per ticket: the tables not answered yet, and the answers read so far (a
        # checksum and the positions it was taken at, or why it could not be taken).
        self._pending: dict[int, set[str]] = {}
        self._answers: dict[int, dict[str, tuple[TableChecksum, dict[str, int] | None] | str]]
        self._answers = {}
        self._tickets = 0
        # What a worker that dies after its units leaves undone, this process checksums
        # itself: each ticket's group and side, each live worker's tasks taken and not
        # answered yet (announced before it works on them), the workers gone.
        self._site, self._names, self._tag = site, list(names), tag
        self._asked: dict[int, tuple[int, bool, dict[str, TableChecksum]]] = {}
        self._taken: dict[int, set[tuple[int, str]]] = {}
        self._gone: set[int] = set()
        # Per worker: its units (a worker that ends before they are all done fails the rebuild).
        self._shares: list[list[int]] = []
        child_site = site.for_another_process()
        try:
            for worker, shares in enumerate(shares_of):
                parent_end, child_end = context.Pipe()
                self._shares.append(shares)
                job = _Job(
                    child_site,
                    list(names),
                    tag,
                    self.units,
                    shares,
                    batch_size,
                    self._tasks,
                    os.getpid(),
                    self._feeds,
                )
                process = context.Process(  # type: ignore[attr-defined]
                    target=_work,
                    args=(job, worker, self._counters, self._current, child_end),
                    name=f"evledger-rebuild-{worker}",
                )
                process.start()
                child_end.close()  # the child's: the parent keeps only its own end
                self._workers.append((process, parent_end))
            for feed in self._feeds.values():
                feed.serve(site)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ShardWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, progress: ProgressHook | None = None, groups: Sequence[int] = ()) -> int:
        """Until every unit is rebuilt (with ``groups``: every unit of one of them, the
        group returned); ShardRebuildFailed names the first unit that failed."""
        while True:
            for group in groups or [-1]:
                if all(self._done(index) for index in self._units_of(group)):
                    if progress is not None:  # where the units stand now, done or not
                        progress(*self._progress())
                    return group
            self._read(_PROGRESS_EVERY_S)
            if progress is not None:
                progress(*self._progress())

    def _units_of(self, group: int) -> list[int]:
        """The units that rebuild group ``group`` (-1: every unit)."""
        return [
            index
            for index, unit in enumerate(self.units)
            if group < 0 or unit.group is None or unit.group == group
        ]

    def _done(self, unit: int) -> bool:
        return bool(self._counters[3 * unit + 2])

    def _progress(self) -> tuple[int, int]:
        """Events reached and aimed at over the shards: a shard is as far as its slowest
        unit (its groups' units read the same events) toward the furthest head one saw; a
        unit done counts as there (what was recorded after it looked, the parent catches
        up), so the units all done are 100 %."""
        reached = aimed = 0
        for shard in range(len(self.shard_names)):
            ours = [i for i, unit in enumerate(self.units) if unit.shard == shard]
            head = max(self._counters[3 * i + 1] for i in ours)
            reached += min(head if self._done(i) else self._counters[3 * i] for i in ours)
            aimed += head
        return reached, max(aimed, 1)

    def ask_checksums(
        self,
        group: int,
        tables: Sequence[str],
        *,
        live: bool = False,
        like: Mapping[str, TableChecksum] | None = None,
        values: Mapping[str, int] | None = None,
    ) -> int:
        """Have the workers checksum ``tables`` of group ``group`` (``site.groups(names)``),
        in one task per worker: of its rebuilt models (their place must be closed in this
        process: DuckDB opens a file in one process), or with ``live`` of its live ones
        (read-only; a table's checksum is ``like``'s where their fingerprints are equal),
        with the positions the models stood at throughout (None if they moved meanwhile).
        Given the tables' ``values`` (rows times columns), the shares are even by them. The
        ticket that ``collect_checksums`` takes."""
        ticket = self._tickets
        self._tickets += 1
        self._pending[ticket] = set(tables)
        self._answers[ticket] = {}
        self._asked[ticket] = (group, live, dict(like or {}))
        if self._gone:
            # A worker died: it may have held the task pipe's lock, so no other worker
            # would take the task.
            self._checksum_here(ticket, tables)
            return ticket
        for share in _shares(tables, len(self._workers), values or {}):
            if share:
                ours = {table: like[table] for table in share if table in like} if like else {}
                self._tasks.put(("checksums", ticket, group, share, live, ours))
        return ticket

    def collect_checksums(
        self, ticket: int
    ) -> tuple[dict[str, TableChecksum], dict[str, int] | None]:
        """The checksums of request ``ticket`` by table, and the tracked positions the
        workers saw (None if the models moved while they took them, or the tables were
        read at different positions)."""
        while self._pending[ticket]:
            self._read(None)
        del self._pending[ticket], self._asked[ticket]
        answers = self._answers.pop(ticket)
        found: dict[str, TableChecksum] = {}
        seen: list[dict[str, int] | None] = []
        for table, answer in answers.items():
            if isinstance(answer, str):
                raise ShardRebuildFailed(f"checksumming read models failed: {answer}")
            found[table], positions = answer
            seen.append(positions)
        same = all(positions is not None and positions == seen[0] for positions in seen)
        return found, (seen[0] if seen and same else {} if not seen else None)

    def close(self) -> None:
        """Stop the workers: told to, once they are serving checksums; terminated while
        they are still rebuilding or once one has died (the rebuild failed)."""
        alive = [process for process, _ in self._workers if process.exitcode is None]
        # A worker that died may have held the task pipe's lock: the others would not read
        # "stop".
        serving = len(alive) == len(self._workers) and all(
            self._done(unit) for unit in range(len(self.units))
        )
        for process in alive:
            if serving:
                self._tasks.put(("stop",))
            else:
                process.terminate()
        for process, connection in self._workers:
            process.join(5)
            if process.exitcode is None:
                process.terminate()
                process.join()
            connection.close()
        self._workers = []
        self._tasks.close()
        for feed in self._feeds.values():
            feed.close()

    def _read(self, timeout: float | None) -> None:
        """Read what the workers sent, waiting up to ``timeout`` for something; raise
        ShardRebuildFailed if one reported a failure or ended before its units were done
        (a worker only ends when told to). One that ended after them leaves its checksum
        tasks to this process. Every worker's messages are read before any exit is handled:
        what the live ones announced taking decides what this process takes over."""
        ends = [
            end
            for worker, (process, connection) in enumerate(self._workers)
            if worker not in self._gone
            for end in (connection, process.sentinel)
        ]
        if not ends:
            return  # every worker gone: this process took their tasks
        wait(ends, timeout)
        ended = [
            worker
            for worker, (process, _) in enumerate(self._workers)
            if worker not in self._gone and process.exitcode is not None
        ]
        self._drain()
        for worker in ended:
            process = self._workers[worker][0]
            undone = [unit for unit in self._shares[worker] if not self._done(unit)]
            if undone:
                current = self._current[worker]
                self._fail(current if current >= 0 else undone[0], _ended(process))
            self._take_over(worker, process)

    def _drain(self) -> None:
        """Read every message the workers not gone have sent so far, without waiting."""
        for worker, (process, connection) in enumerate(self._workers):
            if worker in self._gone:
                continue
            while connection.poll():
                try:
                    message = connection.recv()
                except (EOFError, OSError):  # it died without a word: its exit status tells
                    process.join(1)
                    break
                if message[0] == "failed":
                    if message[1] >= 0:
                        self._fail(message[1], message[2])
                    # Its units were done: its tasks are taken over once it has ended.
                    log.warning("a rebuild worker failed while checksumming: %s", message[2])
                    continue
                self._take(worker, message)

    def _take(self, worker: int | None, message: tuple[Any, ...]) -> None:
        """A worker's message (None: this process's own answer): a task taken, or its
        answer. An answer to what this process answered meanwhile is dropped."""
        kind, ticket, tables, answer = message
        if kind == "took":
            assert worker is not None  # only workers take tasks from the pipe
            self._taken.setdefault(worker, set()).update((ticket, t) for t in tables)
            return
        if worker is not None:
            self._taken.get(worker, set()).difference_update((ticket, t) for t in tables)
        if kind == "dropped":  # taken after a take-over: what is still asked is done here
            left = [table for table in tables if table in self._pending.get(ticket, ())]
            if left:
                self._checksum_here(ticket, left)
            return
        for table in tables:
            if table in self._pending.get(ticket, ()):
                self._answers[ticket][table] = (
                    (tables[table], answer) if kind == "checksums" else answer
                )
                self._pending[ticket].discard(table)

    def _take_over(self, worker: int, process: BaseProcess) -> None:
        """Worker ``worker`` ended after its units: checksum here every table asked for
        that no live worker has taken (those it had taken, and those still queued, which
        the dead worker may have left the task pipe's lock on)."""
        self._gone.add(worker)
        self._taken.pop(worker, None)
        # The live workers drop every task they take from now on; what they announced
        # before stays theirs (its answer comes).
        self._tasks.take_over()
        self._drain()
        log.warning(
            "a rebuild worker ended after its units (%s); the rebuild checksums its tasks itself",
            _ended(process),
        )
        busy = set().union(*self._taken.values()) if self._taken else set()
        for ticket, tables in list(self._pending.items()):
            left = [table for table in sorted(tables) if (ticket, table) not in busy]
            if left:
                self._checksum_here(ticket, left)

    def _checksum_here(self, ticket: int, tables: Sequence[str]) -> None:
        group, live, like = self._asked[ticket]
        home = self._site.groups(self._names)[group].home
        self._take(None, _answer(home, self._tag, ticket, tables, live=live, like=like))

    def _fail(self, unit: int, why: str) -> None:
        raise ShardRebuildFailed(f"rebuilding {self._name(unit)} failed: {why}")

    def _name(self, index: int) -> str:
        """The unit for a person: its shard (by number only when sharded), and its group
        when the shard's groups are rebuilt apart."""
        unit = self.units[index]
        shard = self.shard_names[unit.shard]
        where = f"shard {unit.shard} ({shard})" if len(self.shard_names) > 1 else shard
        if unit.group is None:
            return where
        return f"{self.group_names[unit.group]} from {where}"


def _shares(tables: Sequence[str], count: int, values: Mapping[str, int]) -> list[list[str]]:
    """``tables`` in ``count`` shares: the largest first, each to the share with the fewest
    values so far (tables of unknown size count as one value)."""
    shares: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for table in sorted(tables, key=lambda name: -values.get(name, 1)):
        least = loads.index(min(loads))
        shares[least].append(table)
        loads[least] += values.get(table, 1)
    return shares


def _ended(process: BaseProcess) -> str:
    exitcode = process.exitcode or 0
    if exitcode < 0:
        return f"its process was killed by {signal.Signals(-exitcode).name}"
    return f"its process exited with status {exitcode}"


def _preload() -> None:
    """Import what every worker needs (the ledger's client, the domain's events, DuckDB)
    once, in the parent, before it forks them: otherwise each worker imports them again.
    A sharded ledger is on Kafka, whose client the store imports when first used."""
    import duckdb  # noqa: F401
    import kafka.admin  # noqa: F401

    import domain.application  # noqa: F401
    import projections.facts
    import projections.prefetch  # noqa: F401
    import store.factory  # noqa: F401


def _work(job: _Job, worker: int, counters: Any, current: Any, connection: Connection) -> None:
    """A worker: rebuild its units, then take checksum tasks until told to stop. A failure
    is sent to the parent as one line."""
    # Ctrl-C reaches the whole process group: the parent stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job.tasks.in_worker()
    for shard, feed in job.feeds.items():
        feed.in_worker([job.feed_slot(u) for u in job.units if job.all_units[u].shard == shard])
    unit = -1
    try:
        # A worker allocates per event and per row (batches, checksums) and frees nearly
        # all of it by reference counting: the projector's rare collections (at 20,000 for
        # the batches and Python's 700 for the checksums they took an eighth of a worker's
        # CPU). Not the rebuild process's: at that pace its peak RSS at 2 million events was
        # 296 MiB, not 261, in one run (why was not found).
        with fewer_collections(PROJECTOR_YOUNG_THRESHOLD):
            for unit in job.units:
                current[worker] = unit
                _rebuild_unit(job, unit, counters)
                counters[3 * unit + 2] = 1
            unit = current[worker] = -1
            _serve_checksums(job, connection)
    except Exception as error:
        with contextlib.suppress(OSError):  # the parent may be gone
            connection.send(("failed", unit, _one_line(error)))
        raise SystemExit(1) from None
    finally:
        connection.close()


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def _rebuild_unit(job: _Job, unit: int, counters: Any) -> None:
    """Project one unit's shard into its group's places (every group's), then close them
    (the parent merges them)."""
    shard, group_index = job.all_units[unit].shard, job.all_units[unit].group
    groups = job.site.groups(job.names)
    if group_index is not None:
        groups = [groups[group_index]]
    places = [group.home.rebuild_place(part_tag(job.tag, shard)) for group in groups]
    feed = job.feeds.get(shard)
    try:
        with job.site.ledger_source(shard) as own:
            models = [
                model_class(place.db).for_shard(shard).rejoined_at_end()
                for group, place in zip(groups, places, strict=True)
                for model_class in group.classes
            ]
            entities = {entity for model in models for entity in model.entities}
            source = (
                own if feed is None else FeedSource(own, feed.end(job.feed_slot(unit)), entities)
            )

            def report(reached: int, target: int) -> None:
                if os.getppid() != job.parent:  # the rebuild is gone: nobody will merge this
                    raise SystemExit(1)
                counters[3 * unit], counters[3 * unit + 1] = reached, target

            project_to(source, models, batch_size=job.batch_size, progress=report)
            if isinstance(source, FeedSource):
                source.close()  # read: the shard's other units need not wait for this one
            # What the batches left out (ReadModel.rejoined_at_end), for every row at once;
            # a sharded rebuild's parent does it after merging the shards' rows (_merge).
            if len({u.shard for u in job.all_units}) == 1:
                for model in models:
                    with model.db.transaction():
                        model.rejoin()
    finally:
        for place in places:
            place.db.close()


def _serve_checksums(job: _Job, connection: Connection) -> None:
    """Checksum each task's tables until told to stop: a task that fails is answered
    with its error, and the worker carries on."""
    groups = job.site.groups(job.names)

    def announce(task: tuple[Any, ...]) -> None:
        # Before working on it: should this worker die, the parent knows what it took.
        if task[0] == "checksums":
            connection.send(("took", task[1], dict.fromkeys(task[3]), None))

    while True:
        task = job.tasks.get(announce)
        if task is None or task[0] != "checksums":
            return
        _, ticket, group, tables, live, like = task
        if job.tasks.taken_over():  # the parent does it, and may hold the live side next
            connection.send(("dropped", ticket, dict.fromkeys(tables), None))
            continue
        connection.send(_answer(groups[group].home, job.tag, ticket, tables, live=live, like=like))


def _answer(
    home: ReadModelHome,
    tag: str,
    ticket: int,
    tables: Sequence[str],
    *,
    live: bool,
    like: Mapping[str, TableChecksum],
) -> tuple[Any, ...]:
    """Checksum ``tables`` of ``home``'s live models, or of rebuild ``tag``'s place: the
    answer to task ``ticket``, or why it could not be taken (a table's checksum is
    ``like``'s where their fingerprints are equal)."""
    try:
        db = home.live_reader() if live else home.reader(home.rebuild_place(tag))
        try:
            before = tracked_positions(db)
            sums = {
                table: table_checksum(db, table, home.fingerprint, like.get(table))
                for table in tables
            }
            # A model moves its rows and its position in one transaction: unmoved
            # positions mean every table was read at them.
            after = tracked_positions(db)
        finally:
            db.close()  # before answering: the parent may open it next
    except Exception as error:
        return ("unchecked", ticket, dict.fromkeys(tables), _one_line(error))
    return ("checksums", ticket, sums, after if after == before else None)
