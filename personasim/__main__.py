"""`python -m personasim` is the `personasim` command."""

import sys

from personasim.cli import main

sys.exit(main())
