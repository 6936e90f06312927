"""`python -m landscape` is the `landscape` command."""

from landscape.cli import main

main(prog_name="landscape")
