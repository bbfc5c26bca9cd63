"""What every command starts from: the validated settings (or one clear line and exit 2),
and the composition root built from them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported when a command runs: `evledger --help` does without them
    from bootstrap import Root, Settings


def current_settings() -> Settings:
    """For commands: the settings, or one clear line on stderr and exit status 2."""
    from bootstrap.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(f"evledger: bad setting: {error}", err=True)
        raise typer.Exit(2) from None


def current_root() -> Root:
    """The adapters of this command's process, from the settings."""
    from bootstrap import bootstrap

    return bootstrap(current_settings())
