"""`evledger run`: ingest and the projectors together in one process, until stopped.

Ingest runs in the calling thread and the projectors in another; one stop flag ends both
(SIGTERM: each finishes and commits its batch). A read model that meets an event it cannot
write stops alone (named in the log, on /metrics and at exit) while ingest goes on; a
projector that keeps failing otherwise (an outage past its retries) stops the whole process
loudly instead of leaving read models silently behind.
"""

from __future__ import annotations

import logging
import threading

from consumers.counters import IngestCounters
from consumers.ingest import KafkaIngest, StopFlag
from projections.runner import Projector

log = logging.getLogger(__name__)


class ProjectorFailed(RuntimeError):
    """The projector thread stopped with an error; ingest was stopped with it."""


def run_pipeline(ingest: KafkaIngest, projector: Projector, stop: StopFlag) -> IngestCounters:
    failure: list[BaseException] = []

    def project() -> None:
        try:
            projector.run(stop.event)
        except BaseException as error:
            log.error("projector stopped: %r", error)
            failure.append(error)
            stop.set()

    thread = threading.Thread(target=project, name="projector", daemon=True)
    thread.start()
    try:
        counters = ingest.run(stop)
    finally:
        stop.set()
        thread.join()
    if failure:
        raise ProjectorFailed(f"projector stopped: {failure[0]}") from failure[0]
    return counters
