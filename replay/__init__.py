"""Replay, rebuild and audit of the ledger."""
