"""Options several commands share, spelled once so their help and bounds agree."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import OutputFormat
from projections.batch_size import DEFAULT_BATCH_SIZE

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output as a table, JSON or CSV.")
]
# Events per read-model transaction of `project` and `replay` (None: DEFAULT_BATCH_SIZE).
ProjectionBatchOption = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        max=100_000,
        help=f"Events per transaction [default: {DEFAULT_BATCH_SIZE}].",
    ),
]
