"""Reading a Kafka ledger ahead in a process of its own, so that a projector's read (fetching
and parsing records with kafka-python, pure Python that holds the GIL) runs on another core
while the projector applies the batch before.

The child is spawned (a clean interpreter: nothing the parent has open is inherited but
its end of one pipe) and opens the shard's ledger itself. Asked for the batch after a
position, it answers with the batch's records packed into one bytes blob: a table of
integers (id, version and three lengths per record) and the records' texts and states
one after the other. The parent decodes events straight from the unpacked fields
(``LedgerSource.events_from``). The child reads only when asked, so at most one batch is
ahead; it stops when its pipe closes (the parent closed the source, or died). It is spawned
at the first read ahead, which only a ledger longer than a batch gets.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import struct
from array import array
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from uuid import UUID

from eventsourcing.persistence import OperationalError

from projections.entities import LedgerEvent
from projections.prefetch import ReadAhead
from projections.runner import LedgerSource
from store.records import LedgerRecord, originator_id_value
from store.writer_process import how_ended

_REQUEST = struct.Struct("<qq")
_COUNT = struct.Struct("<q")
# Integers per record in a batch's table: id, version, len(originator), len(topic), len(state).
_FIELDS = 5
_BATCH, _ERROR = b"B", b"!"


class LedgerReaderGone(OperationalError):
    """The ledger reader process ended without answering."""


def pack(records: list[LedgerRecord]) -> bytes:
    """A batch's records as one blob (see the module docstring)."""
    table = array("q")
    texts: list[bytes] = []
    for record in records:
        originator, topic = record.originator_id.encode(), record.topic.encode()
        table.extend(
            (
                record.notification_id,
                record.originator_version,
                len(originator),
                len(topic),
                len(record.state),
            )
        )
        texts += (originator, topic, record.state)
    return b"".join((_BATCH, _COUNT.pack(len(records)), table.tobytes(), *texts))


def unpack(blob: bytes, uuid_ids: bool) -> Iterator[tuple[int, UUID | str, int, str, bytes]]:
    """The records of a blob that ``pack`` made: notification id, originator id (as the
    library's mappers expect it), version, topic and state, as ``LedgerSource.events_from``
    takes them (no ``Notification`` objects: a projector decodes straight from these)."""
    (count,) = _COUNT.unpack_from(blob, 1)
    start = 1 + _COUNT.size
    table = array("q")
    table.frombytes(blob[start : start + count * _FIELDS * table.itemsize])
    at = start + count * _FIELDS * table.itemsize
    topics: dict[bytes, str] = {}
    for row in range(0, count * _FIELDS, _FIELDS):
        notification_id, version, originator_size, topic_size, state_size = table[row : row + 5]
        originator = blob[at : at + originator_size].decode()
        at += originator_size
        topic_bytes = blob[at : at + topic_size]
        at += topic_size
        topic = topics.get(topic_bytes) or topics.setdefault(topic_bytes, topic_bytes.decode())
        state = blob[at : at + state_size]
        at += state_size
        yield notification_id, originator_id_value(originator, uuid_ids), version, topic, state


def _serve(environment: dict[str, str], connection: Connection) -> None:
    """The child: answer each request (position, limit) with the batch after it, or with
    the error reading it raised, until the pipe closes."""
    # Ctrl-C, or a SIGTERM to the process group, is the parent's to handle: it finishes its
    # batch and closes the pipe, which ends this process (as the parent's death does).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from domain.application import BillingApplication
    from store.recorders import KafkaApplicationRecorder

    application = None
    try:
        application = BillingApplication(env=environment)
        recorder = application.recorder
        assert isinstance(recorder, KafkaApplicationRecorder), "a Kafka ledger only"
        ledger = recorder.ledger
        opened: Exception | None = None
    except Exception as error:  # said in answer to each request: the parent raises it
        opened = error
    try:
        while True:
            try:
                position, limit = _REQUEST.unpack(connection.recv_bytes())
            except (EOFError, OSError):
                return
            try:
                if opened is not None:
                    raise opened
                answer = pack(ledger.notifications(position + 1, limit))
            except Exception as error:
                answer = _ERROR + _pickled(error)
            try:
                connection.send_bytes(answer)
            except OSError:
                return
    finally:
        if application is not None:
            application.close()


def _pickled(error: Exception) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


class ProcessReadAhead(ReadAhead):
    """Reads the batch ahead of ``inner`` (a Kafka ledger shard's source) in a child process
    that opens the ledger from ``environment``."""

    def __init__(self, inner: LedgerSource, environment: dict[str, str], uuid_ids: bool) -> None:
        self._inner = inner
        self._environment = environment
        self._uuid_ids = uuid_ids
        # Spawned at the first read ahead: a ledger shorter than a batch (and a live
        # projector that has caught up) never pays for starting an interpreter.
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._asked: int | None = None

    @property
    def process(self) -> BaseProcess:
        """The child (a test looks for it once the source is closed)."""
        if self._process is None:
            raise RuntimeError("the ledger reader process has not been started: nothing read ahead")
        return self._process

    def start(self, position: int, limit: int) -> None:
        self._asked = position
        connection = self._connection or self._spawn()
        with contextlib.suppress(OSError):  # the child is gone: take() says so
            connection.send_bytes(_REQUEST.pack(position, limit))

    def _spawn(self) -> Connection:
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(self._environment, child_end),
            name=f"evledger-ledger-reader-{self._inner.shard}",
            daemon=True,  # also ended by multiprocessing when this process exits
        )
        self._process.start()
        child_end.close()  # the child's: its pipe closes when this process's end does
        return self._connection

    def take(self) -> list[LedgerEvent]:
        position, self._asked = self._asked, None
        assert position is not None, "take() without start()"
        blob = self._answer()
        if blob[:1] == _ERROR:
            error: BaseException = pickle.loads(blob[1:])  # our own child's
            error.add_note("(raised reading the ledger ahead, in the ledger reader process)")
            raise error
        return self._inner.events_from(position, unpack(blob, self._uuid_ids))

    def drop(self, done: Callable[[], None]) -> None:
        if self._asked is not None:
            self._asked = None
            with contextlib.suppress(LedgerReaderGone):
                self._answer()
        done()

    def close(self) -> None:
        if self._process is None or self._connection is None:
            return
        self._connection.close()
        self._process.join(10)
        if self._process.exitcode is None:
            self._process.terminate()
            self._process.join()

    def _answer(self) -> bytes:
        assert self._connection is not None and self._process is not None, "nothing asked"
        try:
            return self._connection.recv_bytes()
        except (EOFError, OSError):
            self._process.join(1)
            raise LedgerReaderGone(
                f"the ledger reader process of shard {self._inner.shard} ended "
                f"({how_ended(self._process)}) without reading the next batch"
            ) from None
