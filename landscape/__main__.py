"""`python -m landscape ...` entry point."""

import sys

from landscape.cli import main

sys.exit(main())
