"""The composition root: from the validated settings, the adapters of one process.

Every entry point (the CLI, benchmarks, the demo) calls ``bootstrap(settings)`` once and
asks the root for what it needs: the write application, a read-only ledger source, the
read-model databases and their homes, the ledger scan. This package is the only one that
chooses a backend (embedded files or Kafka; PostgreSQL or SQLite); everything else works
through the ports those backends implement.
"""

from __future__ import annotations

from bootstrap.root import Root, bootstrap
from bootstrap.settings import Settings, SettingsError, load_settings

__all__ = ["Root", "Settings", "SettingsError", "bootstrap", "load_settings"]
