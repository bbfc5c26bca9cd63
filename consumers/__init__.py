"""Kafka consumers: the upstream message contract, ingest, dead letters, projector runners."""
