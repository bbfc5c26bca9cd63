"""OCPI 2.2.1 roaming: tariff and CDR value objects and a pure engine that prices a CDR."""
