"""RASP with total semantics and its exact compiler; the public names are in ``planted.toys.rasp``."""
