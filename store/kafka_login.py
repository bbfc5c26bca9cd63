"""A SASL login refused by the brokers, told apart from brokers that cannot be reached.

kafka-python retries a refused login until its timeout and then reports only that it
could not bootstrap, and Kafka answers bad credentials by closing the connection. So the
first client of a SASL connection in a process is preceded by one short admin client whose
log is watched: a connection lost while authenticating (or an authentication error) is a
refused login, raised as KafkaLoginRefused, one line naming the user (never the password).
"""

from __future__ import annotations

import logging
import threading

from kafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailedError

from store.kafka_clients import KafkaConnection

# How long the first client of a connection waits to learn whether its login is refused.
LOGIN_CHECK_MS = 5000


class KafkaLoginRefused(KafkaError):  # type: ignore[misc]  # kafka-python is untyped
    """The brokers refused the SASL username and password (not retriable: a wrong password
    stays wrong). The message names the user, never the password."""

    retriable = False

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Kafka refused the login"


def check_login(connection: KafkaConnection) -> None:
    """Raise KafkaLoginRefused if the brokers refuse this SASL login; once a process. A
    broker that cannot be reached at all is left to the client being built (its callers
    know how to wait for Kafka)."""
    if not connection.security.protocol.startswith("SASL_"):
        return
    with _LOGINS_LOCK:
        if connection in _LOGINS_ACCEPTED:
            return
        watch = _LoginWatch()
        kafka_logger = logging.getLogger("kafka")
        level, propagate = kafka_logger.level, kafka_logger.propagate
        # The client says what it sends at DEBUG only; for this moment those records go
        # to the watch alone, not to the process's handlers.
        kafka_logger.addHandler(watch)
        kafka_logger.setLevel(logging.DEBUG)
        kafka_logger.propagate = False
        try:
            connection.admin_unchecked(
                bootstrap_timeout_ms=LOGIN_CHECK_MS,
                request_timeout_ms=LOGIN_CHECK_MS,
                client_id="evledger-login",
            ).close()
            watch.refused = False
        except KafkaError:
            pass
        finally:
            kafka_logger.removeHandler(watch)
            kafka_logger.setLevel(level)
            kafka_logger.propagate = propagate
        if not watch.refused:
            _LOGINS_ACCEPTED.add(connection)
            return
    security = connection.security
    raise KafkaLoginRefused(
        f"Kafka at {connection.bootstrap_servers} refused the login of user "
        f"{security.username!r} ({security.sasl_mechanism}): wrong username or password; "
        "check EVLEDGER_KAFKA_SASL_USERNAME and EVLEDGER_KAFKA_SASL_PASSWORD"
    )


class _LoginWatch(logging.Handler):
    """Tells from kafka-python's log records whether the brokers refused the login: an
    authentication error, or the connection lost after a SASL authenticate request."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.authenticating = False
        self.refused = False

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, SaslAuthenticationFailedError):
                self.refused = True
            elif type(arg).__name__ == "SaslAuthenticateRequest":
                self.authenticating = True
            elif isinstance(arg, KafkaConnectionError) and self.authenticating:
                self.refused = True
        if str(record.msg).startswith("Initializing connection"):
            self.authenticating = False


_LOGINS_LOCK = threading.Lock()
_LOGINS_ACCEPTED: set[KafkaConnection] = set()
