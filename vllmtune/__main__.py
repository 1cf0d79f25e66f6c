"""``python -m vllmtune``: the same as the ``vllmtune`` console script."""

import sys

from vllmtune.entry import main

sys.exit(main())
