"""``python3 -m pcapcheck``: the same as the ``pcapcheck`` console script."""

from .cli import run

run()
