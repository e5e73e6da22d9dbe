"""RASP with total semantics and its exact compiler; the public names are in ``planted.toys.rasp``."""

from planted.toys._rasp._toy import FAMILY, TOLERANCE, RASPTransformerConfig, RASPTransformerToy, rasp_transformer

__all__ = ["FAMILY", "TOLERANCE", "RASPTransformerConfig", "RASPTransformerToy", "rasp_transformer"]
