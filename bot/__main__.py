"""`python -m bot` is `fournil`."""

from bot.cli import main

main()
