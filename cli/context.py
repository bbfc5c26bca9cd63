"""What every command starts from: the validated settings (or one clear line and exit 2),
and the composition root built from them."""

from __future__ import annotations

import typer

from bootstrap import Root, Settings, SettingsError, bootstrap, load_settings


def current_settings() -> Settings:
    """For commands: the settings, or one clear line on stderr and exit status 2."""
    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(f"evledger: bad setting: {error}", err=True)
        raise typer.Exit(2) from None


def current_root() -> Root:
    """The adapters of this command's process, from the settings."""
    return bootstrap(current_settings())
