"""``python -m planted``: the ``planted`` command line."""

from planted.evaluators.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
