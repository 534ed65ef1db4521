"""``python -m roost`` runs the ``roost`` command."""

from roost.cli.main import main

main()
