"""Worker processes that never outlive their parent: an eval or a server killed with SIGKILL leaves no orphans."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time


def die_with_parent() -> None:
    """Call first thing in a worker process.

    Linux: the kernel sends SIGKILL to this process when its parent dies (PR_SET_PDEATHSIG). Elsewhere (and as
    a second line of defence) a daemon thread exits the process once its parent is gone.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="omniemo-parent-watch", daemon=True).start()
