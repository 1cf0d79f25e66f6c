"""``python -m vllmtune.cache --upstream http://vllm:8000 --port 8080`` (the proxy container)."""

import sys

from vllmtune.cache.command import main

sys.exit(main())
