"""The root object: each adapter built once per process, from one set of settings."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.read_models import (
    ANALYTICS,
    READ_MODEL_NAMES,
    analytics_home,
    live_views_database,
    projection_names,
    read_model_classes,
    views_home,
)
from bootstrap.settings import Settings

if TYPE_CHECKING:
    from audit.scan import LedgerScan
    from bootstrap.ledgers import LedgerBackend
    from domain.application import BillingApplication
    from projections.databases.port import Database
    from projections.prefetch import ReadAhead, ReadAheadPermit
    from projections.read_model import ReadModel
    from projections.runner import LedgerSource, Projector, RetryPolicy
    from replay.home_duckdb import DuckHome
    from replay.positions import LedgerPositions
    from replay.targets import ModelGroup, ViewsHome


@dataclass
class Root:
    """What one process is wired to. Build it with ``bootstrap(settings)``."""

    settings: Settings
    _applications: dict[int, BillingApplication] = field(default_factory=dict, repr=False)
    # The analytics file, symlinks resolved by the process that made this root for another.
    analytics_file: Path | None = None
    # Whether a Kafka ledger may be read ahead in a child process when a second core is
    # usable; a rebuild's worker processes already take a core each, so theirs use a thread.
    reader_processes: bool = True

    # Each backend is built when first used: a query command opens its views database
    # without importing the ledger's, DuckDB's or the rebuild's modules.
    @cached_property
    def ledger(self) -> LedgerBackend:
        from bootstrap.ledgers import ledger_backend

        return ledger_backend(self.settings)

    @cached_property
    def views(self) -> ViewsHome:
        return views_home(self.settings)

    @cached_property
    def analytics(self) -> DuckHome:
        return analytics_home(self.settings, self.analytics_file)

    # --- the write side ------------------------------------------------------------------

    def application(self, shard: int = 0) -> BillingApplication:
        """The write application on the configured ledger's shard (shard 0 is the whole of
        an unsharded ledger); one per shard and root, until close_shard() or close()."""
        if shard not in self._applications:
            from consumers.routing import ROUTING_RULE
            from domain.application import BillingApplication
            from domain.cdr_reconciliation import CdrTolerance

            shards = self.ledger.shards
            note = f"(on ledger shard {shard} of {shards}: {ROUTING_RULE})" if shards > 1 else ""
            self._applications[shard] = BillingApplication(
                env=self.ledger.shard(shard).environment(),
                cdr_tolerance=CdrTolerance(self.settings.ocpi_tolerance_minor),
                unknown_note=note,
                aggregate_cache_size=self.settings.aggregate_cache_size,
            )
        return self._applications[shard]

    def close_shard(self, shard: int) -> None:
        """End one shard's write application (its writer stops: the shard moved away)."""
        application = self._applications.pop(shard, None)
        if application is not None:
            application.close()

    def close(self) -> None:
        for shard in list(self._applications):
            self.close_shard(shard)

    # --- the ledger, read ----------------------------------------------------------------

    def one_log(self, shard: int | None, what: str) -> int:
        """The shard to read: ``shard``, or (None) the whole ledger, which only an unsharded
        ledger is as one log; WholeLedgerOnly names ``what`` otherwise."""
        if shard is not None:
            return shard
        if self.ledger.shards > 1:
            from bootstrap.ledgers import WholeLedgerOnly

            raise WholeLedgerOnly(
                f"{what} reads the ledger as one log, and this one has {self.ledger.shards} "
                "shards (EVLEDGER_LEDGER_SHARDS): not supported on a sharded ledger yet"
            )
        return 0

    @contextmanager
    def ledger_source(
        self, shard: int | None = None, permit: ReadAheadPermit | None = None
    ) -> Iterator[LedgerSource]:
        """The ledger (or one shard of it) as decoded, contiguous events, for projectors
        and replay; the sources of one projector's shards share ``permit`` (one batch read
        ahead between them)."""
        from domain.application import BillingApplication
        from projections.prefetch import PrefetchingSource
        from projections.runner import LedgerSource

        shard = self.one_log(shard, "replaying the ledger")
        environment = self.ledger.shard(shard).environment()
        application = BillingApplication(env=environment)
        inner = LedgerSource.of(application, shard)
        source = PrefetchingSource(inner, permit, self._read_ahead(inner, environment))
        try:
            yield source
        finally:
            source.close()
            application.close()

    def _read_ahead(self, inner: LedgerSource, environment: dict[str, str]) -> ReadAhead | None:
        """A Kafka ledger is read ahead in a process of its own when a second core is free
        to run it; otherwise (None) in a thread."""
        from bootstrap.ledgers import KafkaLedger

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if not (self.reader_processes and isinstance(self.ledger, KafkaLedger)) or cores < 2:
            return None
        from bootstrap.reader_process import ProcessReadAhead

        return ProcessReadAhead(inner, environment, getattr(inner.recorder, "uuid_ids", True))

    @contextmanager
    def ledger_sources(self) -> Iterator[list[LedgerSource]]:
        """Every shard's source, shard 0 first (one for an unsharded ledger), for replay."""
        from projections.prefetch import ReadAheadPermit

        permit = ReadAheadPermit()
        with ExitStack() as stack:
            yield [
                stack.enter_context(self.ledger_source(shard, permit))
                for shard in range(self.ledger.shards)
            ]

    def shard_names(self) -> list[str]:
        """Each shard as a person names it (its ledger topic), shard 0 first."""
        if self.ledger.shards == 1:
            return ["the ledger"]
        return self.ledger.kafka("a sharded ledger").ledger_topics

    def for_another_process(self) -> Root:
        """A root on the same settings with nothing built yet (a rebuild's worker process
        builds its own adapters), and this root's analytics file: a symlink retargeted
        meanwhile would have the shards' part files made beside another file. The workers
        take a core each, so they read the ledger ahead in a thread, not a process more."""
        return Root(
            settings=self.settings, analytics_file=self.analytics.file, reader_processes=False
        )

    @property
    def snapshots_dir(self) -> Path:
        """Where named snapshots of the read models are kept, one directory each."""
        return self.settings.data_dir / "snapshots"

    def positions(self, source: LedgerSource) -> LedgerPositions:
        return self.ledger.positions(source)

    def ledger_scans(self) -> list[LedgerScan]:
        """Every shard's raw scan, shard 0 first (one for an unsharded ledger)."""
        return [self.ledger_scan(shard) for shard in range(self.ledger.shards)]

    def ledger_scan(self, shard: int | None = None) -> LedgerScan:
        """The ledger (or one shard of it) read raw, record by record."""
        return self.ledger.shard(self.one_log(shard, "scanning the ledger")).scan()

    # --- read models ---------------------------------------------------------------------

    def views_database(self) -> Database:
        """The live payment history and refund status database."""
        return live_views_database(self.settings)

    def analytics_database(self) -> Database:
        return self.analytics.live()

    def groups(self, names: Sequence[str]) -> list[ModelGroup]:
        """The named read models, grouped by the database they share."""
        from replay.targets import ModelGroup

        names = projection_names(names)
        classes = read_model_classes()
        views = tuple(classes[name] for name in names if name != ANALYTICS)
        groups = [ModelGroup(self.views, views)] if views else []
        if ANALYTICS in names:
            groups.append(ModelGroup(self.analytics, (classes[ANALYTICS],)))
        return groups

    def read_models(self, names: Sequence[str] = READ_MODEL_NAMES) -> list[ReadModel]:
        """Live read models, each group on one database connection."""
        from projections.analytics import Analytics
        from projections.analytics_snapshot import SnapshotPublisher

        names = projection_names(names)
        classes = read_model_classes()
        views = [classes[name] for name in names if name != ANALYTICS]
        models: list[ReadModel] = []
        if views:
            db = self.views.live()
            models.extend(model_class(db) for model_class in views)
        if ANALYTICS in names:
            analytics = self.analytics.live()
            # The live analytics model publishes the copy that readers open.
            models.append(Analytics(analytics, SnapshotPublisher(analytics)))
        return models

    @contextmanager
    def projector(
        self,
        names: Sequence[str] = READ_MODEL_NAMES,
        batch_size: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> Iterator[Projector]:
        """A projector over the configured ledger (every shard) and read models, tables
        created."""
        from projections.batch_size import DEFAULT_BATCH_SIZE
        from projections.gc_pacing import fewer_collections
        from projections.runner import Projector, RetryPolicy
        from projections.sharded import ShardedProjector

        models = self.read_models(names)
        with ExitStack() as stack:
            stack.callback(lambda: [model.db.close() for model in models])
            # Runs before the databases close (an ExitStack unwinds in reverse).
            for model in models:
                stack.callback(model.finish)
            projectors = []
            sources = stack.enter_context(self.ledger_sources())
            for shard, source in enumerate(sources):
                projectors.append(
                    Projector(
                        source,
                        [model.for_shard(shard) for model in models] if shard else models,
                        batch_size=batch_size or DEFAULT_BATCH_SIZE,
                        retry=retry or RetryPolicy(),
                    )
                )
            runner = (
                projectors[0]
                if len(projectors) == 1
                else ShardedProjector(projectors[0].source, models, shards=projectors)
            )
            runner.create()
            stack.enter_context(fewer_collections())
            yield runner


def bootstrap(settings: Settings) -> Root:
    """The one place where settings become adapters (and backends are chosen)."""
    return Root(settings=settings)
