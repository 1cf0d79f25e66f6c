"""``python -m vllmtune.cli``: the typer app (and the fast paths), as the console script."""

import sys

from vllmtune.cli import main

sys.exit(main())
