"""Execute one notebook and print ``{"seconds", "peak_mb", "error"}`` as JSON.

Run as ``python -m bench.execute NOTEBOOK`` in a process of its own: the
kernel is this process's child, so once it has been shut down (and waited
for) ``getrusage(RUSAGE_CHILDREN)`` holds its peak resident memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def execute(path: Path, timeout: int = 600) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    error = None
    t0 = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # a failing cell is a result to report, not a crash
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {first}"[:300]
    seconds = time.perf_counter() - t0
    # ru_maxrss is in KiB on Linux; the kernel (a waited-for child) is the big one.
    peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return {"seconds": round(seconds, 2), "peak_mb": round(peak_kb / 1024, 1), "error": error}


if __name__ == "__main__":
    print(json.dumps(execute(Path(sys.argv[1]))))
