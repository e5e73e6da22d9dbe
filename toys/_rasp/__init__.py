"""RASP with total semantics, its exact compiler, and the ``rasp_transformer`` family.

The public names are in ``planted.toys.rasp`` and ``planted.toys``. The family's names load on
first use, so reading the list of programs (``_programs``) never imports JAX.
"""

_FAMILY_NAMES = ("FAMILY", "TOLERANCE", "RASPTransformerConfig", "RASPTransformerToy", "rasp_transformer")
_CATALOG_NAMES = ("MODES", "TRANSFORMER_FAILURE_MODES")


def __getattr__(name: str):
    if name in _FAMILY_NAMES:
        from planted.toys._rasp import _toy

        return getattr(_toy, name)
    if name in _CATALOG_NAMES:
        from planted.toys._rasp import _catalog

        return getattr(_catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FAMILY_NAMES + _CATALOG_NAMES)
