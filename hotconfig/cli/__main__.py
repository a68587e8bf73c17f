"""``python -m hotconfig.cli``: the same as the ``hotconfig`` console script."""

from hotconfig.cli import main

main()
