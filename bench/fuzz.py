"""The long fuzz run: `python bench/fuzz.py [--messages 100000] [--seed N]`.

Feeds generated and mutated upstream messages, a hundred per pipeline (fresh embedded
ledger, SQLite and DuckDB read models, a rebuild beside them, audit verify), and prints the
totals: consumed, applied, duplicates, dead-lettered, rejected, ledger events, time.
Any breach of an invariant stops it with the failing messages' pipeline directory kept.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.messages import message_bytes
from tests.fuzz.pipeline import FuzzFigures, run_messages

PER_PIPELINE = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    figures = FuzzFigures()
    started = time.monotonic()
    pipelines = max(1, args.messages // PER_PIPELINE)

    @settings(
        max_examples=pipelines,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(message_bytes(), min_size=PER_PIPELINE, max_size=PER_PIPELINE))
    def one_pipeline(messages: list[bytes]) -> None:
        with tempfile.TemporaryDirectory() as workdir:
            figures.add(run_messages(messages, Path(workdir)))
        done = figures.consumed
        if done % (PER_PIPELINE * 10) == 0:
            print(f"{done:,} messages, {time.monotonic() - started:,.0f} s", file=sys.stderr)

    print(f"seed {args.seed}: {pipelines} pipelines of {PER_PIPELINE} messages", file=sys.stderr)
    one_pipeline._hypothesis_internal_use_seed = args.seed  # type: ignore[attr-defined]
    one_pipeline()
    elapsed = time.monotonic() - started
    print(
        f"consumed {figures.consumed:,} = applied {figures.applied:,} + duplicates "
        f"{figures.duplicates:,} + dead-lettered {figures.dead_lettered:,}; rejected "
        f"{figures.rejected:,}; ledger events {figures.ledger_events:,}; read models equal "
        f"their rebuild and audit verify passed in every pipeline; {elapsed:,.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
