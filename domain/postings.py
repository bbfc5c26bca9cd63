"""Double-entry postings over a small chart of accounts; every entry balances per currency.

Chart of accounts (names are stable: projectors and auditors group by them):

- ``customer_receivable`` (asset): what customers owe for priced sessions.
- ``processor_clearing`` (asset): money captured at the payment processor, not yet settled.
- ``charging_revenue`` (income): the net (ex-VAT) price of charging.
- ``vat_payable`` (liability): VAT collected on sessions.
- ``refunds`` (contra-revenue): money given back to customers.
- ``authorisation_holds`` / ``customer_holds`` (memo pair): funds held by a
  pre-authorisation. The hold is posted when authorised and reversed in full when the
  payment is captured, fails or is voided, so only open holds carry a balance.
- ``roaming_costs`` (expense), ``vat_receivable`` (asset) and ``roaming_payable``
  (liability): a roaming CDR re-priced by evledger, owed to the OCPI party that sent it.
- ``roaming_disputes`` (suspense): the part of a CDR's total_cost outside the tolerance of
  the re-priced total (positive: overcharged), so the payable always equals what was billed.

Postings travel inside events as lists of primitive dicts, so a projector can rebuild every
balance from the ledger alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from domain.errors import InvalidValueError
from domain.money import currency_exponent, require_minor_units


class Account(StrEnum):
    CUSTOMER_RECEIVABLE = "customer_receivable"
    PROCESSOR_CLEARING = "processor_clearing"
    CHARGING_REVENUE = "charging_revenue"
    VAT_PAYABLE = "vat_payable"
    REFUNDS = "refunds"
    AUTHORISATION_HOLDS = "authorisation_holds"
    CUSTOMER_HOLDS = "customer_holds"
    ROAMING_COSTS = "roaming_costs"
    VAT_RECEIVABLE = "vat_receivable"
    ROAMING_PAYABLE = "roaming_payable"
    ROAMING_DISPUTES = "roaming_disputes"


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


def posting(
    account: Account, direction: Direction, amount_minor: int, currency: str
) -> dict[str, Any]:
    """One side of a journal entry, as events carry it: an amount debited or credited to
    one account, checked (whole minor units, a known currency). Made as the primitive dict
    itself: a frozen dataclass per line, only to be spelled as this dict, was most of a
    journal's cost (several lines a message)."""
    require_minor_units(amount_minor, "posting amount")
    currency_exponent(currency)
    # ``_value_`` is what ``.value`` returns, without its Python-level descriptor.
    return {
        "account": account._value_,
        "direction": direction._value_,
        "amount_minor": amount_minor,
        "currency": currency,
    }


def _transfer(
    debit: Account, credit: Account, amount_minor: int, currency: str
) -> list[dict[str, Any]]:
    # A zero transfer adds nothing but noise to every ledger reader.
    if amount_minor == 0:
        return []
    return [
        posting(debit, Direction.DEBIT, amount_minor, currency),
        posting(credit, Direction.CREDIT, amount_minor, currency),
    ]


def is_balanced(postings: list[dict[str, Any]]) -> bool:
    """True when debits equal credits in every currency."""
    net: dict[str, int] = {}
    for posting in postings:
        sign = 1 if posting["direction"] == Direction.DEBIT else -1
        net[posting["currency"]] = net.get(posting["currency"], 0) + sign * posting["amount_minor"]
    return all(value == 0 for value in net.values())


def _journal(postings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not is_balanced(postings):  # pragma: no cover - every builder below balances
        raise InvalidValueError(f"unbalanced journal entry: {postings}")
    return postings


def session_priced(
    total_minor: int, subtotal_minor: int, vat_minor: int, currency: str
) -> list[dict[str, Any]]:
    """The customer owes the total: revenue for the net price, VAT payable for the tax."""
    postings = []
    if total_minor:
        postings.append(
            posting(Account.CUSTOMER_RECEIVABLE, Direction.DEBIT, total_minor, currency)
        )
    if subtotal_minor:
        postings.append(
            posting(Account.CHARGING_REVENUE, Direction.CREDIT, subtotal_minor, currency)
        )
    if vat_minor:
        postings.append(posting(Account.VAT_PAYABLE, Direction.CREDIT, vat_minor, currency))
    return _journal(postings)


def hold_placed(hold_minor: int, currency: str) -> list[dict[str, Any]]:
    return _journal(
        _transfer(Account.AUTHORISATION_HOLDS, Account.CUSTOMER_HOLDS, hold_minor, currency)
    )


def hold_released(hold_minor: int, currency: str) -> list[dict[str, Any]]:
    return _journal(
        _transfer(Account.CUSTOMER_HOLDS, Account.AUTHORISATION_HOLDS, hold_minor, currency)
    )


def payment_captured(captured_minor: int, hold_minor: int, currency: str) -> list[dict[str, Any]]:
    """The whole hold is released; the captured amount settles the customer's receivable."""
    return _journal(
        _transfer(Account.CUSTOMER_HOLDS, Account.AUTHORISATION_HOLDS, hold_minor, currency)
        + _transfer(
            Account.PROCESSOR_CLEARING, Account.CUSTOMER_RECEIVABLE, captured_minor, currency
        )
    )


def refund_issued(amount_minor: int, currency: str) -> list[dict[str, Any]]:
    return _journal(_transfer(Account.REFUNDS, Account.PROCESSOR_CLEARING, amount_minor, currency))


def _signed(lines: list[tuple[Account, int]], currency: str) -> list[dict[str, Any]]:
    """Postings from signed amounts: positive debits the account, negative credits it."""
    return _journal(
        [
            posting(
                account,
                Direction.DEBIT if amount > 0 else Direction.CREDIT,
                abs(amount),
                currency,
            )
            for account, amount in lines
            if amount
        ]
    )


def cdr_priced(excl_vat_minor: int, incl_vat_minor: int, currency: str) -> list[dict[str, Any]]:
    """A re-priced roaming CDR: the cost and its VAT, owed to the party that sent it."""
    return _signed(
        [
            (Account.ROAMING_COSTS, excl_vat_minor),
            (Account.VAT_RECEIVABLE, incl_vat_minor - excl_vat_minor),
            (Account.ROAMING_PAYABLE, -incl_vat_minor),
        ],
        currency,
    )


def cdr_reconciled(
    difference_minor: int, within_tolerance: bool, currency: str
) -> list[dict[str, Any]]:
    """The payable moves to what the CDR billed; the difference is accepted as cost when
    within the tolerance, else held as a dispute (positive: an overcharge)."""
    other = Account.ROAMING_COSTS if within_tolerance else Account.ROAMING_DISPUTES
    return _signed(
        [(other, difference_minor), (Account.ROAMING_PAYABLE, -difference_minor)], currency
    )


def reversal(postings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entry that undoes ``postings``: every line in the other direction."""
    flipped = {Direction.DEBIT.value: Direction.CREDIT, Direction.CREDIT.value: Direction.DEBIT}
    return _journal(
        [
            posting(
                Account(p["account"]),
                flipped[str(p["direction"])],
                int(p["amount_minor"]),
                str(p["currency"]),
            )
            for p in postings
        ]
    )
