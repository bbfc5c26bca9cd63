"""Typed domain errors, each carrying a reason a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the billing domain raises on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidValueError(DomainError, ValueError):
    """A malformed value (negative amount, naive datetime, float money...).

    A ValueError so that an ingest loop can dead-letter the message: no retry fixes it.
    """


class UnknownCurrencyError(InvalidValueError):
    """A currency code that is not in the ISO 4217 table the domain knows."""


class CurrencyMismatchError(InvalidValueError):
    """Two amounts in different currencies were combined."""


class BusinessRuleViolation(DomainError):
    """A well-formed request that breaks a business rule.

    The application records these as rejection events (ARCHITECTURE.md, guarantee 8); aggregates
    raise them where the rule lives.
    """


class SessionRuleViolation(BusinessRuleViolation):
    """A session command that the session's state or readings do not allow."""


class MeterReadingError(SessionRuleViolation):
    """The meter stop reading is below the meter start reading."""


class SessionTimelineError(SessionRuleViolation):
    """A stop (or end of charging) dated before the session started, or after the stop."""


class SessionAlreadyStoppedError(SessionRuleViolation):
    """A second stop for a session that has already stopped."""


class PaymentRuleViolation(BusinessRuleViolation):
    """A payment command that the payment's state does not allow."""


class RefundRuleViolation(BusinessRuleViolation):
    """A refund command that the refund's state or the payment's balance does not allow."""


class UnknownAggregateError(BusinessRuleViolation):
    """A command names a tariff, session, payment or refund the ledger has never seen."""


class IdempotencyConflictError(DomainError):
    """An event_id was seen before with different content.

    Not a business rule: the upstream reused a key, so a person has to look at both messages.
    """
