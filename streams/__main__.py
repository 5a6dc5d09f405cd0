"""``python -m streams`` is ``orderwatch``."""

from streams.cli import main

main()
