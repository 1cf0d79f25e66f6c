"""Children that a test interrupts with SIGINT (Ctrl-C).

A suite started from a background job (``cmd &``, nohup, some CI runners) inherits SIGINT as
*ignored*, and an ignored disposition survives exec: Python then installs no KeyboardInterrupt
handler and the child never sees the test's Ctrl-C. Give such children the default disposition::

    subprocess.Popen([...], **INTERRUPTIBLE)
"""

from __future__ import annotations

import signal
from typing import Any


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Popen keyword arguments: SIGINT back to its default in the child, before exec.
INTERRUPTIBLE: dict[str, Any] = {"preexec_fn": _default_sigint}
