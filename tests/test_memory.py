"""The allocator's options (core/memory.py): clause-sized buffers made and dropped on several
threads, after a large one raised glibc's mapping threshold, are given back to the system."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    if sys.argv[1] == "tuned":
        from core.memory import tune_allocator
        assert tune_allocator()
    before = rss_mb()
    big = np.ones(8 * 2**20 // 8)
    del big  # a large buffer freed: by default glibc now keeps smaller ones in its arenas

    def reply():
        clauses = [np.ones(300 * 1024 // 8) for _ in range(100)]  # 30 MB of clause-sized audio
        del clauses

    threads = [threading.Thread(target=reply) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(rss_mb() - before)
    """
)


def _kept_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's options: Linux only")
def test_freed_buffers_go_back_to_the_system_with_the_options_set():
    assert _kept_mb("tuned") < 10
    # The same work with glibc's defaults keeps most of it: the options are what makes the difference.
    assert _kept_mb("plain") > 60
