"""``python -m vitrine`` is the ``vitrine`` command."""

from vitrine.cli import main

main()
