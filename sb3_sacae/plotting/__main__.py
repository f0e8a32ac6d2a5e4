"""``python -m sb3_sacae.plotting``: see :mod:`sb3_sacae.plotting.cli`."""

import sys

from sb3_sacae.plotting.cli import main

if __name__ == "__main__":
    sys.exit(main())
