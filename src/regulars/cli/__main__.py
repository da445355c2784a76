"""`python -m regulars.cli`."""

from regulars.cli.main import main

main()
