"""``python -m agecast.cli``: the ``agecast`` program."""

from agecast.cli import run

run()
