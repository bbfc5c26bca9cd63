"""The evledger command line and its settings."""
