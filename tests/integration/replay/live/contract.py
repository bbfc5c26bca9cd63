"""What every read-model home must do for a rebuild (the ReadModelHome and LiveSide ports),
written once and run against each database, the way the eventsourcing library's recorder
test cases are: a subclass says only how to make its home."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from projections.databases.port import Database
from projections.read_model import ReadModel
from projections.runner import LedgerSource
from replay.checksum import TableChecksum, model_checksums, table_checksum
from replay.ledger_prefix import project_to
from replay.targets import ModelGroup, Place, ReadModelHome


class LiveSwapTestCase:
    """A home's live models are held, compared and replaced by a rebuild beside them."""

    # The read models that live together in this home.
    model_classes: tuple[type[ReadModel], ...]

    def make_home(self, request: pytest.FixtureRequest, tmp_path: Path) -> ReadModelHome:
        raise NotImplementedError

    @pytest.fixture
    def home(self, request: pytest.FixtureRequest, tmp_path: Path) -> ReadModelHome:
        return self.make_home(request, tmp_path)

    def _contents(self, models: list[ReadModel]) -> dict[str, Any]:
        return {model.name: (model.position(), model_checksums(model)) for model in models}

    def test_a_rebuild_is_swapped_in_whole_at_the_held_positions(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        head = ledger.last_position()
        group = ModelGroup(home, self.model_classes)
        live_db = home.live()
        live = [model_class(live_db) for model_class in self.model_classes]
        for model in live:
            model.create()
        project_to(ledger, live, head // 2)
        place = home.rebuild_place("contract")
        try:
            rebuilt = [model_class(place.db) for model_class in self.model_classes]
            for model in rebuilt:
                model.create()
            project_to(ledger, rebuilt, head)
            expected = self._contents(rebuilt)
            if home.exclusive:
                # As its projector would be: the rebuild is refused while one holds the file.
                live_db.close()
            side = home.live_side(group, place)
            try:
                with side.held() as positions:
                    assert positions == {model.name: head // 2 for model in live}
                    side.swap_in(rebuilt, {model.name: head for model in rebuilt})
                side.after_swap()
            finally:
                side.close()
        finally:
            place.discard()
        live_db.close()
        again = home.live()
        try:
            swapped = [model_class(again) for model_class in self.model_classes]
            assert self._contents(swapped) == expected
        finally:
            again.close()

    def _projected_twice(
        self, home: ReadModelHome, ledger: LedgerSource, live_db: Database, place: Place
    ) -> tuple[list[ReadModel], dict[str, TableChecksum]]:
        """The models projected to the ledger's head live and in ``place``: the live ones,
        and the rebuilt tables' checksums (with their fingerprints)."""
        head = ledger.last_position()
        live = [model_class(live_db) for model_class in self.model_classes]
        rebuilt = [model_class(place.db) for model_class in self.model_classes]
        for models in (live, rebuilt):
            for model in models:
                model.create()
            project_to(ledger, models, head)
        twins = {
            table: checksum
            for model in rebuilt
            for table, checksum in model_checksums(model, home.fingerprint).items()
        }
        return live, twins

    def test_a_live_table_equal_to_its_rebuilt_twin_has_its_checksum(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        """The compare's live checksums: a table's fingerprint equal to the rebuilt one's
        (where the database has fingerprints) gives it the rebuilt checksum; a changed row
        is checksummed, and caught, all the same."""
        group = ModelGroup(home, self.model_classes)
        live_db = home.live()
        place = home.rebuild_place("twin")
        try:
            live, twins = self._projected_twice(home, ledger, live_db, place)
            fingerprinted = home.fingerprint(live_db, next(iter(live[0].tables))) is not None
            assert all((c.fingerprint is not None) == fingerprinted for c in twins.values())
            if home.exclusive:
                live_db.close()
            side = home.live_side(group, place)
            try:
                sums = {
                    table: checksum
                    for model in side.models
                    for table, checksum in side.checksums(model, twins).items()
                }
                assert sums == twins
                if fingerprinted:
                    assert all(sums[table] is twins[table] for table in twins)
                model = side.models[0]
                table = next(t for t in model.tables if twins[t].rows)
                # One text changed: the same number of rows.
                row = side.db.execute(f"SELECT * FROM {table}")[0]
                column = next(name for name, value in row.items() if isinstance(value, str))
                side.db.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                    [row[column] + "!", row[column]],
                )
                changed = side.checksums(model, twins)
                assert changed[table].rows == twins[table].rows
                assert not changed[table].matches(twins[table])
                assert all(changed[t] == twins[t] for t in model.tables if t != table)
            finally:
                side.close()
        finally:
            place.discard()
        live_db.close()

    def test_a_live_table_whose_rows_swapped_values_is_caught(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        """Two rows' amounts swapped: every column holds the same values, the rows do not.
        A fingerprint that sums what each column holds (PostgreSQL's hash_record_extended
        alone is linear in its columns' hashes) would take the rebuilt checksum."""
        group = ModelGroup(home, self.model_classes)
        live_db = home.live()
        place = home.rebuild_place("twin")
        try:
            _, twins = self._projected_twice(home, ledger, live_db, place)
            if home.exclusive:
                live_db.close()
            side = home.live_side(group, place)
            try:
                swapped = []
                for model in side.models:
                    for table in model.tables:
                        columns = side.db.execute(f"SELECT * FROM {table} LIMIT 1")
                        for column in columns[0] if columns else ():
                            # An amount the projector writes (net_minor is computed).
                            if not column.endswith("_minor") or column == "net_minor":
                                continue
                            # Two values each held by one row: the swap moves only those.
                            once = side.db.execute(
                                f"SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL"
                                f" GROUP BY {column} HAVING count(*) = 1 LIMIT 2"
                            )
                            if len(once) < 2:
                                continue
                            a, b = once[0]["v"], once[1]["v"]
                            side.db.execute(
                                f"UPDATE {table} SET {column} = CASE WHEN {column} = ? THEN ?"
                                f" ELSE ? END WHERE {column} IN (?, ?)",
                                [a, b, a, a, b],
                            )
                            changed = side.checksums(model, twins)
                            assert changed[table].rows == twins[table].rows
                            assert not changed[table].matches(twins[table]), (table, column)
                            swapped.append((table, column))
                            side.db.execute(
                                f"UPDATE {table} SET {column} = CASE WHEN {column} = ? THEN ?"
                                f" ELSE ? END WHERE {column} IN (?, ?)",
                                [a, b, a, a, b],
                            )
                assert swapped  # not vacuous: some table had two amounts to swap
            finally:
                side.close()
        finally:
            place.discard()
        live_db.close()

    # A rebuilt column and a live one (another type, or another name) holding values the
    # database spells alike in a row's text: the checksum tells them apart, so must the
    # fingerprint.
    _TWINS = (
        ("taken TIMESTAMP", "taken TEXT", "'2024-01-02 03:04:05'"),
        ("amount BIGINT", "total BIGINT", "20"),
    )

    def test_a_live_table_of_other_column_types_or_names_is_checksummed_itself(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        live_db = home.live()
        place = home.rebuild_place("columns")
        try:
            for rebuilt_column, live_column, value in self._TWINS:
                place.db.execute(f"CREATE TABLE probe (id BIGINT, {rebuilt_column})")
                place.db.execute(f"INSERT INTO probe VALUES (1, {value})")
                name = rebuilt_column.split()[0]
                text = place.db.execute(f"SELECT CAST({name} AS TEXT) AS t FROM probe")[0]["t"]
                live_db.execute(f"CREATE TABLE probe (id BIGINT, {live_column})")
                live_db.execute("INSERT INTO probe VALUES (1, ?)", [text])
                if live_column.endswith("BIGINT"):
                    live_db.execute("UPDATE probe SET total = 20")
                rebuilt = table_checksum(place.db, "probe", home.fingerprint)
                live = table_checksum(live_db, "probe", home.fingerprint, like=rebuilt)
                assert live is not rebuilt
                assert live == table_checksum(live_db, "probe")  # its own rows' checksum
                for db in (place.db, live_db):
                    db.execute("DROP TABLE probe")
        finally:
            with contextlib.suppress(Exception):
                live_db.execute("DROP TABLE probe")
            live_db.close()
            place.discard()

    def test_a_fingerprint_that_fails_leaves_the_checksum_and_the_transaction(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        """A failing fingerprint statement: the table is checksummed row by row (only
        DuckDB's and PostgreSQL's homes fingerprint tables; SQLite's checksums them all the
        same)."""
        live_db = home.live()
        model = self.model_classes[0](live_db)
        model.create()
        project_to(ledger, [model], ledger.last_position())
        table = next(iter(model.tables))
        expected = table_checksum(live_db, table)
        home.fingerprint_statement = lambda *_: "SELECT * FROM no_such_table"  # type: ignore[method-assign]
        try:
            failing = table_checksum(live_db, table, home.fingerprint)
            assert failing == expected
            assert failing.fingerprint is None
        finally:
            live_db.close()

    def test_a_home_without_live_models_reports_none(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        group = ModelGroup(home, self.model_classes)
        place = home.rebuild_place("empty")
        try:
            side = home.live_side(group, place)
            try:
                assert side.positions() == {model.name: None for model in self.model_classes}
            finally:
                side.close()
        finally:
            place.discard()

    def test_a_discarded_rebuild_leaves_nothing_behind(
        self, home: ReadModelHome, ledger: LedgerSource
    ) -> None:
        place = home.rebuild_place("gone")
        models = [model_class(place.db) for model_class in self.model_classes]
        for model in models:
            model.create()
        project_to(ledger, models, 50)
        place.discard()
        again = home.rebuild_place("gone")
        try:
            fresh = [model_class(again.db) for model_class in self.model_classes]
            for model in fresh:
                model.create()
            assert [model.position() for model in fresh] == [0] * len(fresh)
        finally:
            again.discard()
