"""planted: networks and data sets with planted, known internals, and scores of methods against them.

The four subpackages are ``planted.groundtruth`` (records of what was planted and what methods
predict), ``planted.toys`` (the generators), ``planted.methods`` (reference methods) and
``planted.evaluators`` (scores, suites, the runner, reports). ``python -m planted`` is the
``planted`` command line. Importing this package imports none of them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
