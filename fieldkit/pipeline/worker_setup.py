"""A LocalCluster worker's preload: Ctrl-C is the driver's to handle.

On a terminal, Ctrl-C sends SIGINT to the whole process group, the workers included. The driver
marks its run ``interrupted`` and closes the cluster, which stops the workers; a worker that
handled SIGINT itself would die first with a KeyboardInterrupt traceback on the user's terminal.
"""

from __future__ import annotations

import signal

__all__ = ["dask_setup"]


def dask_setup(worker) -> None:
    """Ignore SIGINT in this worker process (distributed calls this on the worker's main thread).

    Parameters
    ----------
    worker : distributed.Worker
        The worker being started (unused).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
