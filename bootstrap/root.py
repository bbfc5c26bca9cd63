"""The root object: each adapter built once per process, from one set of settings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.ledgers import LedgerBackend, ledger_backend
from bootstrap.read_models import (
    ANALYTICS,
    READ_MODEL_NAMES,
    analytics_home,
    projection_names,
    read_model_classes,
    views_home,
)
from bootstrap.settings import Settings

if TYPE_CHECKING:
    from audit.scan import LedgerScan
    from domain.application import BillingApplication
    from projections.databases.port import Database
    from projections.read_model import ReadModel
    from projections.runner import LedgerSource, Projector, RetryPolicy
    from replay.home_duckdb import DuckHome
    from replay.positions import LedgerPositions
    from replay.targets import ModelGroup, ViewsHome


@dataclass
class Root:
    """What one process is wired to. Build it with ``bootstrap(settings)``."""

    settings: Settings
    _application: BillingApplication | None = field(default=None, repr=False)

    # Each backend is built when first used: a query command opens its views database
    # without importing the ledger's, DuckDB's or the rebuild's modules.
    @cached_property
    def ledger(self) -> LedgerBackend:
        return ledger_backend(self.settings)

    @cached_property
    def views(self) -> ViewsHome:
        return views_home(self.settings)

    @cached_property
    def analytics(self) -> DuckHome:
        return analytics_home(self.settings)

    # --- the write side ------------------------------------------------------------------

    def application(self) -> BillingApplication:
        """The write application on the configured ledger (one per root; close() ends it)."""
        if self._application is None:
            from domain.application import BillingApplication
            from domain.cdr_reconciliation import CdrTolerance

            self._application = BillingApplication(
                env=self.ledger.environment(),
                cdr_tolerance=CdrTolerance(self.settings.ocpi_tolerance_minor),
            )
        return self._application

    def close(self) -> None:
        if self._application is not None:
            self._application.close()
            self._application = None

    # --- the ledger, read ----------------------------------------------------------------

    @contextmanager
    def ledger_source(self) -> Iterator[LedgerSource]:
        """The ledger as decoded, contiguous events, for projectors and replay."""
        from domain.application import BillingApplication
        from projections.prefetch import PrefetchingSource

        application = BillingApplication(env=self.ledger.environment())
        source = PrefetchingSource.of(application)
        try:
            yield source
        finally:
            source.close()
            application.close()

    @property
    def snapshots_dir(self) -> Path:
        """Where named snapshots of the read models are kept, one directory each."""
        return self.settings.data_dir / "snapshots"

    def positions(self, source: LedgerSource) -> LedgerPositions:
        return self.ledger.positions(source)

    def ledger_scan(self) -> LedgerScan:
        return self.ledger.scan()

    # --- read models ---------------------------------------------------------------------

    def views_database(self) -> Database:
        """The live payment history and refund status database."""
        return self.views.live()

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
        """A projector over the configured ledger and read models, tables created."""
        from projections.runner import DEFAULT_BATCH_SIZE, Projector, RetryPolicy

        models = self.read_models(names)
        try:
            with self.ledger_source() as source:
                runner = Projector(
                    source,
                    models,
                    batch_size=batch_size or DEFAULT_BATCH_SIZE,
                    retry=retry or RetryPolicy(),
                )
                runner.create()
                yield runner
        finally:
            for model in models:
                model.db.close()


def bootstrap(settings: Settings) -> Root:
    """The one place where settings become adapters (and backends are chosen)."""
    return Root(settings=settings)
