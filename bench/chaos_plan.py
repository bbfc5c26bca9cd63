"""The chaos run's seeded schedule: when to kill -9 what, and how long a broker stays down."""

from __future__ import annotations

import random
from dataclasses import dataclass

INGEST = "ingest"
PROJECTOR = "projector"
BROKER = "broker"
KINDS = (INGEST, PROJECTOR, BROKER)
# Ingest is where a kill can cut a transaction, so it is killed most.
WEIGHTS = (0.4, 0.3, 0.3)


@dataclass(frozen=True)
class Kill:
    at_s: float  # seconds after the start of the schedule
    kind: str
    node: int | None = None  # the broker, for BROKER kills
    down_s: float = 0.0  # how long the victim stays dead before its restart begins


def plan(
    kills: int, seed: int, brokers: int = 3, gap_s: tuple[float, float] = (1.0, 3.0)
) -> list[Kill]:
    """`kills` kills, the same for the same seed: kinds by WEIGHTS, random gaps between
    them, a random broker and downtime for broker kills."""
    rng = random.Random(seed)
    schedule = []
    at = 0.0
    for _ in range(kills):
        at += rng.uniform(*gap_s)
        kind = rng.choices(KINDS, WEIGHTS)[0]
        if kind == BROKER:
            schedule.append(Kill(at, kind, rng.randint(1, brokers), rng.uniform(1.0, 5.0)))
        else:
            schedule.append(Kill(at, kind, None, rng.uniform(0.0, 1.0)))
    return schedule
