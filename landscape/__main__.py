"""`python -m landscape ...` entry point."""

import sys

from landscape.cli import main

if __name__ == "__main__":
    sys.exit(main())
