"""`python -m landscape ...` entry point."""

import sys

from landscape.cli import MODULE_PROG, main

if __name__ == "__main__":
    sys.exit(main(prog=MODULE_PROG))
