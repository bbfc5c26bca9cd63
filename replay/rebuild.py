"""Rebuild read models from the start of the ledger beside the live ones, prove them equal
with a checksum per table, and swap them in (Guarantee 7). With more than one core or
shard, worker processes (replay/shard_processes.py) rebuild the shards, or each shard's
database groups, side by side into places of their own; a sharded ledger's are then merged
into the one rebuild place, one position per shard, and swapped once.

The live models keep serving throughout. The rebuild replays the ledger into a new schema
or file, then, with the live models held still at some position, brings the rebuild to
exactly that position, compares checksums and swaps in the same transaction. A mismatch
keeps the live models (unless forced, when the live model is known to be bad).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from projections.databases.errors import ReadModelDatabaseError
from projections.gc_pacing import fewer_collections
from projections.read_model import ReadModel
from projections.runner import LedgerSource
from projections.tracking import TRACKING_TABLE, tracked_positions
from replay.checksum import TableChecksum, model_checksums, table_checksum
from replay.ledger_prefix import REBUILD_BATCH_SIZE, ProgressHook, project_shards, project_to
from replay.leftovers import remove_leftovers
from replay.shard_processes import ShardRebuildFailed, ShardWorkers, part_tag, work_units
from replay.swap import LiveModelBusy, LiveSide
from replay.targets import ModelGroup, Place, RebuildOwnershipLost, StillOwned, new_tag

if TYPE_CHECKING:
    from projections.databases.port import Database
    from replay.targets import ReadModelHome, ReplaySite

log = logging.getLogger("evledger.replay")


@dataclass
class Remote:
    """The worker processes of a rebuild, as one group's compare uses them: the
    group's index, and the checksums of its rebuilt models the workers were asked for early
    (a ticket), then collected with the positions they were taken at, and those of its live
    models, asked for with the rebuilt ones (a live table whose fingerprint is its rebuilt
    table's has its checksum) or taken by this process (``checksum_live``)."""

    workers: ShardWorkers
    group: int
    tables: list[str]
    tickets: dict[bool, int] = field(default_factory=dict)
    # Each table's values (rows times columns) in the rebuild, once known (the workers'
    # shares are even by them).
    values: dict[str, int] = field(default_factory=dict)
    early: dict[bool, tuple[dict[str, TableChecksum], dict[str, int] | None] | None] = field(
        default_factory=dict
    )
    # The live tables' fingerprints this process took (checksum_live), and the positions
    # they were taken at.
    live_prints: tuple[dict[str, str | None], dict[str, int]] | None = None

    def checksum_live(self, home: ReadModelHome) -> None:
        """Checksum the live tables here, now, while the workers checksum the rebuilt ones
        (a home several processes may read: PostgreSQL, whose server spells the rows, or
        SQLite; this process would only wait for the workers), with the positions they
        stood at throughout; no live task is asked then (``ask_live``). Where the home
        fingerprints every table, only the fingerprints are taken: a live table whose
        fingerprint is its rebuilt twin's has its checksum, known once the workers answer
        (``ask_live``). If the models moved meanwhile, or cannot be read, the workers are
        asked as before."""
        try:
            db = home.live_reader()
            try:
                before = tracked_positions(db)
                prints = {table: home.fingerprint(db, table) for table in self.tables}
                sums = None
                if None in prints.values():
                    sums = {table: table_checksum(db, table) for table in self.tables}
                after = tracked_positions(db)
            finally:
                db.close()
        except ReadModelDatabaseError:  # no live model, or it is busy: the workers see
            return
        if after != before:
            return
        if sums is None:
            self.live_prints = (prints, after)
        else:
            self.early[True] = (sums, after)

    def ask(self, *, live: bool, like: dict[str, TableChecksum] | None = None) -> None:
        self.tickets[live] = self.workers.ask_checksums(
            self.group, self.tables, live=live, like=like, values=self.values
        )

    def ask_live(self) -> None:
        """The rebuilt checksums' answer, then the live ones asked for (once): a group's
        live checksums are asked as soon as its rebuilt ones are in, not after the groups
        before it are swapped."""
        if False in self.early:
            return
        self.early[False] = self._answer(False)
        rebuilt = self.early[False]
        # Only checksums taken at known positions stand for the rebuilt tables (a table that
        # moved while its fingerprint and checksum were taken may have two contents).
        trusted = rebuilt[0] if rebuilt is not None and rebuilt[1] is not None else None
        if self.live_prints is not None and trusted is not None:
            prints, positions = self.live_prints
            if all(
                (twin := trusted.get(table)) is not None and twin.fingerprint == prints[table]
                for table in self.tables
            ):
                self.early[True] = ({table: trusted[table] for table in self.tables}, positions)
        if True not in self.early:  # taken here (checksum_live)
            self.ask(live=True, like=trusted)

    def collect(self) -> None:
        """The rebuilt checksums' answer, then the live ones' (None where the workers could
        not take them: the models are checksummed when compared, as always, and a live model
        that is missing or busy says so then)."""
        self.ask_live()
        if True in self.tickets:
            self.early[True] = self._answer(True)

    def _answer(self, live: bool) -> tuple[dict[str, TableChecksum], dict[str, int] | None] | None:
        ticket = self.tickets.pop(live, None)
        if ticket is None:
            return None
        try:
            return self.workers.collect_checksums(ticket)
        except ShardRebuildFailed:
            return None

    def live_at(
        self, positions: dict[str, int], group: ModelGroup
    ) -> dict[str, TableChecksum] | None:
        return self._at(True, positions, group)

    def rebuilt_at(
        self, positions: dict[str, int], group: ModelGroup
    ) -> dict[str, TableChecksum] | None:
        return self._at(False, positions, group)

    def _at(
        self, live: bool, positions: dict[str, int], group: ModelGroup
    ) -> dict[str, TableChecksum] | None:
        """The early checksums, if taken at exactly ``positions`` (``group``'s models')."""
        early = self.early.get(live)
        if early is None or early[1] is None or _ours(early[1], group) != positions:
            return None
        return early[0]


# Rounds of "catch up, hold the live model, compare" before giving up on a live model
# that the held lock should have stopped: more than one is only needed after a failure.
_ALIGN_ROUNDS = 3


class LiveModelBehind(RuntimeError):
    """The live model stayed behind the rebuild although it was caught up; nothing swapped."""


@dataclass(frozen=True)
class TableComparison:
    """One table's checksum in the live model (None: no live model) and in the rebuild."""

    projection: str
    table: str
    live: TableChecksum | None
    rebuilt: TableChecksum

    @property
    def equal(self) -> bool:
        return self.live is None or self.live.matches(self.rebuilt)


@dataclass
class GroupOutcome:
    """What happened to the read models of one database."""

    projections: tuple[str, ...]
    where: str
    positions: dict[str, int] = field(default_factory=dict)
    comparisons: list[TableComparison] = field(default_factory=list)
    swapped: bool = False
    # Why the group could not be compared or swapped (its live models are kept).
    error: str | None = None

    def position_of(self, name: str) -> int | None:
        """The events the rebuilt ``name`` holds: its position summed over the shards (each
        shard's ids run from 1), which is the position of an unsharded ledger's model."""
        shards = [at for key, at in self.positions.items() if key.split("@")[0] == name]
        return sum(shards) if shards else None

    @property
    def mismatched(self) -> list[TableComparison]:
        return [comparison for comparison in self.comparisons if not comparison.equal]


@dataclass
class RebuildReport:
    outcomes: list[GroupOutcome]
    events: int
    seconds: float

    @property
    def all_swapped(self) -> bool:
        return all(outcome.swapped for outcome in self.outcomes)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rebuild(
    root: ReplaySite,
    names: Sequence[str],
    *,
    force: bool = False,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: ProgressHook | None = None,
    notice: Callable[[str], None] = log.warning,
) -> RebuildReport:
    """Rebuild the named read models from the whole ledger and swap each group in when its
    checksums equal the live model's (or ``force``). What killed rebuilds left behind goes
    first, said in one line to ``notice``."""
    groups = root.groups(names)
    remove_leftovers([group.home for group in groups], notice)
    tag = new_tag()
    shards = len(root.shard_names())
    units = work_units(shards, len(groups))
    # Worker processes rebuild the units, shard p into places tagged part_tag(tag, p):
    # shard 0 into the rebuild places, the others' merged into them.
    parts = [
        [group.home.rebuild_place(part_tag(tag, shard)) for group in groups]
        for shard in range(1, shards)
    ]
    places: list[Place] = []
    started = time.perf_counter()
    with ExitStack() as stack:
        # Owned before any place is made, by locks the workers inherit: a killed rebuild's
        # places are removed by the next one, a running one's never (replay/leftovers.py).
        checks = [stack.enter_context(group.home.rebuild_owner(tag)) for group in groups]

        def still_owned() -> None:
            for check in checks:
                check()

        stack.callback(_discard, places, parts)  # once the workers have stopped
        # Forked first, before this process opens any database or ledger (only the owners'
        # locks are open, which the workers keep for as long as they live).
        workers = (
            stack.enter_context(ShardWorkers(root, names, tag, batch_size, units))
            if len(units) > 1
            else None
        )
        places.extend(group.home.rebuild_place(tag) for group in groups)
        sources = stack.enter_context(root.ledger_sources())  # while the workers work
        # The catch-ups and checksums of the swap allocate per row as much as the batches.
        stack.enter_context(fewer_collections())
        rebuilt = {
            group: [model_class(place.db) for model_class in group.classes]
            for group, place in zip(groups, places, strict=True)
        }
        remotes: list[Remote | None] = [None] * len(groups)
        if workers is not None:
            remotes = []
            for index, models in enumerate(rebuilt.values()):
                remotes.append(
                    Remote(workers, index, [table for model in models for table in model.tables])
                )
        outcomes: list[GroupOutcome] = []
        try:
            if workers is None:
                # One pass over the ledger (each shard's batches in turn) feeds every model.
                every = [model for models in rebuilt.values() for model in models]
                reached = project_shards(sources, every, batch_size=batch_size, progress=progress)
            else:
                reached = _merge_and_checksum(
                    workers,
                    progress,
                    groups=groups,
                    places=places,
                    parts=parts,
                    rebuilt=rebuilt,
                    sources=sources,
                    remotes=remotes,
                    batch_size=batch_size,
                    still_owned=still_owned,
                )
            seconds = time.perf_counter() - started
            for group, remote in zip(groups, remotes, strict=True):
                if remote is not None and not group.home.exclusive:
                    remote.checksum_live(group.home)
            for remote in remotes:
                if remote is not None:
                    remote.ask_live()
            for group, place, asked in zip(groups, places, remotes, strict=True):
                still_owned()  # its places may be another rebuild's leftovers otherwise
                outcomes.append(
                    _swap_group(
                        group=group,
                        place=place,
                        rebuilt=rebuilt[group],
                        sources=sources,
                        force=force,
                        batch_size=batch_size,
                        remote=asked,
                    )
                )
        except (ShardRebuildFailed, RebuildOwnershipLost) as failed:
            raise type(failed)(f"{failed}; {_swapped_so_far(outcomes)}") from None
    return RebuildReport(outcomes, reached, seconds)


def _swapped_so_far(outcomes: Sequence[GroupOutcome]) -> str:
    """What a rebuild that failed midway had swapped in (a group's swap is whole)."""
    swapped = [", ".join(outcome.projections) for outcome in outcomes if outcome.swapped]
    if not swapped:
        return "nothing was swapped"
    return f"{'; '.join(swapped)} swapped in already, the other models not"


def _merge_and_checksum(
    workers: ShardWorkers,
    progress: ProgressHook | None,
    *,
    groups: Sequence[ModelGroup],
    places: Sequence[Place],
    parts: Sequence[Sequence[Place]],
    rebuilt: dict[ModelGroup, list[ReadModel]],
    sources: Sequence[LedgerSource],
    remotes: Sequence[Remote | None],
    batch_size: int,
    still_owned: StillOwned,
) -> int:
    """Group by group as the workers finish rebuilding them: merge the shards' rows into
    its rebuild place, feed it what the shards recorded since, and have the workers
    checksum it (taken again when compared if the models have moved meanwhile) while they
    still rebuild the other groups; the fewest events a group reached."""
    reached: list[int] = []
    waiting = list(range(len(groups)))
    while waiting:
        index = workers.wait(progress, waiting)
        waiting.remove(index)
        group, place, remote = groups[index], places[index], remotes[index]
        if parts:
            still_owned()
            _merge(group, place, [shard_places[index] for shard_places in parts])
        reached.append(project_shards(sources, rebuilt[group], batch_size=batch_size))
        if remote is not None:
            # The workers' shares of the checksums, even by values (rows times columns):
            # one big table is most of a group's (analytics' postings), and a wide one
            # costs more per row (payment_history's 35 columns against refund_status_
            # payments' 3, with as many rows: even by rows, one worker took 14.8 s of CPU
            # for the views' tables at 2 million events, the other 1.2 s).
            remote.values = {table: _values(place.db, table) for table in remote.tables}
        place.db.close()  # the workers open it (DuckDB: one process per file)
        if remote is not None:
            remote.ask(live=False)
    return min(reached)


def _values(db: Database, table: str) -> int:
    """How many values ``table`` holds: its rows times its columns."""
    rows = int(db.execute(f"SELECT count(*) AS n FROM {table}")[0]["n"])
    first = db.execute(f"SELECT * FROM {table} LIMIT 1")
    return rows * len(first[0]) if first else 0


def _discard(places: list[Place], parts: list[list[Place]]) -> None:
    # The shards' places first: the rebuild's own tells whose they are should this stop.
    for place in [*(place for shard_places in parts for place in shard_places), *places]:
        place.discard()


def _merge(group: ModelGroup, place: Place, parts: Sequence[Place]) -> None:
    """The rebuild place of ``group`` (shard 0's, its tables made by shard 0's worker) with
    every other shard's rows and positions (one tracking row per shard, each in one part
    only), then the columns a row takes from rows that may be on another shard
    (``ReadModel.rejoin``)."""
    tables = [table for model_class in group.classes for table in model_class.tables]
    group.home.merge(place, parts, [*tables, TRACKING_TABLE])
    with place.db.transaction():
        for model_class in group.classes:
            model_class(place.db).rejoin()


def _swap_group(
    *,
    group: ModelGroup,
    place: Place,
    rebuilt: list[ReadModel],
    sources: Sequence[LedgerSource],
    force: bool,
    batch_size: int,
    remote: Remote | None,
) -> GroupOutcome:
    if remote is not None:
        remote.collect()  # the workers are done with the group's places
    try:
        live = group.home.live_side(group, place)
    except LiveModelBusy as busy:
        return GroupOutcome(group.names, group.home.describe(), error=str(busy))
    try:
        return _align_compare_swap(
            live,
            group=group,
            rebuilt=rebuilt,
            sources=sources,
            force=force,
            batch_size=batch_size,
            remote=remote,
        )
    finally:
        live.close()


def _align_compare_swap(
    live: LiveSide,
    *,
    group: ModelGroup,
    rebuilt: list[ReadModel],
    sources: Sequence[LedgerSource],
    force: bool,
    batch_size: int,
    remote: Remote | None,
) -> GroupOutcome:
    outcome = GroupOutcome(group.names, group.home.describe())
    # Each shard's instance of each rebuilt model: one position per shard.
    per_shard = [
        [model.for_shard(shard) for model in rebuilt] if shard else rebuilt
        for shard in range(len(sources))
    ]
    for _ in range(_ALIGN_ROUNDS):
        heads = [source.last_position() for source in sources]
        project_shards(sources, rebuilt, heads, batch_size=batch_size)
        live.catch_up(sources, heads)
        with live.held() as live_positions:
            rebuilt_positions = {
                model.tracking_name: model.position() for models in per_shard for model in models
            }
            behind = [
                name
                for name, position in rebuilt_positions.items()
                if (live_at := live_positions.get(name)) is not None and live_at < position
            ]
            if behind:
                continue
            # The live models are held still: bring each rebuilt one to exactly its position
            # on every shard.
            for source, models in zip(sources, per_shard, strict=True):
                for model in models:
                    target = live_positions.get(model.tracking_name)
                    if target is not None and target > rebuilt_positions[model.tracking_name]:
                        project_to(source, [model], target, batch_size=batch_size)
            outcome.positions = {
                model.tracking_name: model.position() for models in per_shard for model in models
            }
            outcome.comparisons = _compare(live, rebuilt, live_positions, outcome.positions, remote)
            if outcome.mismatched and not force:
                return outcome
            try:
                live.swap_in(rebuilt, outcome.positions)
            except LiveModelBusy as busy:
                # Refused at the last step (DuckDB's rename): the other groups stand.
                outcome.error = str(busy)
                return outcome
        live.after_swap()
        outcome.swapped = True
        return outcome
    raise LiveModelBehind(
        f"the live {', '.join(group.names)} stayed behind the rebuild after "
        f"{_ALIGN_ROUNDS} catch-ups; is its database refusing writes? Nothing was swapped"
    )


def _ours(positions: dict[str, int], group: ModelGroup) -> dict[str, int]:
    """The positions of ``group``'s models (one per shard) among ``positions``."""
    return {name: at for name, at in positions.items() if name.split("@")[0] in group.names}


def _compare(
    live: LiveSide,
    rebuilt: list[ReadModel],
    live_positions: dict[str, int | None],
    rebuilt_positions: dict[str, int],
    remote: Remote | None,
) -> list[TableComparison]:
    """Each table's checksum, live and rebuilt. With ``remote``, the checksums the workers
    took before count where the models have not moved since (the same positions: a model
    moves its rows and position in one transaction); otherwise the workers take them now:
    the rebuilt ones, and the live ones where other processes may read the held live
    models (this process checksums the others). The rebuilt ones first: a live table whose
    fingerprint is its rebuilt twin's has its checksum (replay/checksum.py)."""
    tables = [table for model in rebuilt for table in model.tables]
    held = {name: at for name, at in live_positions.items() if at is not None}
    live_sums: dict[str, TableChecksum] | None = None
    rebuilt_sums: dict[str, TableChecksum] | None = None
    if remote is not None:
        live_sums = remote.live_at(held, live.group)
        rebuilt_sums = remote.rebuilt_at(rebuilt_positions, live.group)
        workers, group = remote.workers, remote.group
        if rebuilt_sums is None:
            rebuilt[0].db.close()  # the group's one rebuild place: the workers open it
            rebuilt_sums = workers.collect_checksums(workers.ask_checksums(group, tables))[0]
        if live_sums is None and not live.group.home.exclusive and held:
            asked = workers.ask_checksums(group, tables, live=True, like=rebuilt_sums)
            live_sums = workers.collect_checksums(asked)[0]
    if rebuilt_sums is None:
        rebuilt_sums = {
            table: checksum
            for model in rebuilt
            for table, checksum in model_checksums(model, live.group.home.fingerprint).items()
        }
    if live_sums is None:
        live_sums = {
            table: checksum
            for model, live_model in zip(rebuilt, live.models, strict=True)
            if live_positions[model.name] is not None
            for table, checksum in live.checksums(live_model, rebuilt_sums).items()
        }
    return [
        TableComparison(
            model.name,
            table,
            live_sums.get(table) if live_positions[model.name] is not None else None,
            rebuilt_sums[table],
        )
        for model in rebuilt
        for table in model.tables
    ]
