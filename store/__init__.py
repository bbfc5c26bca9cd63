"""The Kafka-backed eventsourcing persistence module: the ledger topic as an event store."""
