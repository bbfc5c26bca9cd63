"""Read models past the ledger's head: said only once a second read of the head agrees."""

from __future__ import annotations

from audit.ledger_head import LedgerHead
from audit.ledger_lag import shard_lags


class _Reads(LedgerHead):
    """A head that answers the given figures in turn (a short read, then the real one)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.asked = 0

    def last_notification_id(self) -> int:
        self.asked += 1
        return self.answers.pop(0)


def test_a_short_read_of_the_head_is_not_taken_for_read_models_ahead() -> None:
    head = _Reads(40, 64)
    [lag] = shard_lags([head], [{"payment_history": 64, "analytics": 50}])
    assert (lag.head, lag.ahead(), lag.is_ahead("payment_history")) == (64, None, False)
    assert lag.lag("analytics") == 14
    assert head.asked == 2


def test_read_models_ahead_on_both_reads_are_ahead() -> None:
    head = _Reads(40, 41)
    [lag] = shard_lags([head], [{"payment_history": 64, "analytics": None}])
    assert lag.head == 41
    assert lag.is_ahead("payment_history") and not lag.is_ahead("analytics")
    reason = lag.ahead()
    assert reason is not None and "payment_history at 64" in reason


def test_the_head_is_read_once_when_nothing_is_ahead() -> None:
    head = _Reads(64)
    [lag] = shard_lags([head], [{"payment_history": 64, "refund_status": None}])
    assert (lag.head, head.asked) == (64, 1)
