"""``python -m textshift`` runs the command-line interface."""

from textshift.cli import main

main()
