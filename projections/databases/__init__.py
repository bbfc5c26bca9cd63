"""The read-model databases: the ``Database`` port and one adapter module per backend."""
