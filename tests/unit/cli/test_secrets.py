"""PostgreSQL passwords are never printed: not in a settings error, not
in `evledger settings`, not in a connection error, whatever characters they hold."""

from __future__ import annotations

import re

import pytest

from bootstrap import Settings, bootstrap
from bootstrap.secrets import mask_dsn, scrub
from bootstrap.settings import SettingsError, load_settings
from cli.doctor import check_views

PASSWORDS = ["p%41ss", "pa ss wqrdz", "se/cret", "abc@def:ghi", "x'y"]


def dsns(password: str) -> list[str]:
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"postgresql://evledger:{password}@127.0.0.1:1/evledger",
        f"host=127.0.0.1 port=1 user=evledger password='{quoted}' dbname=evledger",
    ]


def secret_parts(password: str) -> list[str]:
    # The parts a parser may split it into; each must be gone.
    return [part for part in re.split(r"[@/:\s]+", password) if len(part) > 2]


@pytest.mark.parametrize("password", PASSWORDS)
def test_shown_settings_mask_the_password(password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for dsn in dsns(password):
        monkeypatch.setenv("EVLEDGER_PG_DSN", dsn)
        try:
            shown = str(load_settings().redacted()["pg_dsn"])
        except SettingsError as error:
            shown = str(error)
        for part in secret_parts(password):
            assert part not in shown, (dsn, shown)


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_connection_error_does_not_echo_the_password(password: str) -> None:
    for dsn in dsns(password):
        try:
            check = check_views(bootstrap(Settings(pg_dsn=dsn)))
        except Exception as error:  # a DSN psycopg cannot even parse
            text = scrub(str(error), dsn)
        else:
            assert not check.ok
            text = f"{check.where} {check.detail}"
        for part in secret_parts(password):
            assert part not in text, (dsn, text)


def test_an_unparseable_dsn_in_the_environment_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVLEDGER_PG_DSN", "host=h password='unterminated secret-value")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "secret-value" not in str(caught.value)
    assert "secret-value" not in mask_dsn("host=h password=secret-value")
