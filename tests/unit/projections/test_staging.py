"""Staging files (projections/staging.py): an abandoned one is removed, one that cannot be
removed is logged and left without stopping the copy, and a name with glob characters is
matched as it is."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from projections.staging import remove_abandoned, staging_file


def abandoned(target: Path, tag: str) -> Path:
    """A staging file of ``target`` as a killed process leaves it (unlocked)."""
    path = target.with_name(f".{target.name}.{tag}.partial")
    path.write_bytes(b"copy")
    return path


def test_a_leftover_that_cannot_be_removed_is_logged_and_the_others_still_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "analytics.snapshot.duckdb"
    unremovable = target.with_name(f".{target.name}.1-dir.partial")
    unremovable.mkdir()  # unlink fails (as for another user's file in a sticky directory)
    unopenable = target.with_name(f".{target.name}.2-loop.partial")
    unopenable.symlink_to(unopenable.name)  # open fails (as for another user's 0600 file)
    gone = abandoned(target, "3-gone")

    with caplog.at_level(logging.WARNING, logger="evledger.staging"):
        assert remove_abandoned(target) == [gone]
        with staging_file(target) as partial:
            os.replace(partial, target)
    assert target.read_bytes() == b""
    assert not gone.exists() and unremovable.is_dir() and unopenable.is_symlink()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4 and all("cannot remove" in message for message in warned)


def test_a_target_name_with_glob_characters_has_its_leftovers_removed(tmp_path: Path) -> None:
    target = tmp_path / "a[1].snapshot.duckdb"
    leftover = abandoned(target, "9-ab")
    other = abandoned(tmp_path / "a1.snapshot.duckdb", "9-ab")  # another file's, kept
    assert remove_abandoned(target) == [leftover]
    assert other.exists()
