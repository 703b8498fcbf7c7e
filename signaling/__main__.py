"""`python -m signaling` runs the same server as `urok serve` (arguments as for `urok`)."""

import sys

from signaling.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = ["serve", *args]
    raise SystemExit(main(args))
