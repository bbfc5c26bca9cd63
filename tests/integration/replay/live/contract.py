"""What every read-model home must do for a rebuild (the ReadModelHome and LiveSide ports),
written once and run against each database, the way the eventsourcing library's recorder
test cases are: a subclass says only how to make its home."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from projections.read_model import ReadModel
from projections.runner import LedgerSource
from replay.checksum import model_checksums
from replay.ledger_prefix import project_to
from replay.targets import ModelGroup, ReadModelHome


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
