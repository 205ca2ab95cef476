"""How much memory a computation may still take on the host."""

from __future__ import annotations

import os

# Needs this small are never refused, so the OS is not asked: a batch of short sentences runs
# many small computations, and reading /proc for each cost as much as their softmax.
ALWAYS_FITS = 64 << 20


def host_available_bytes() -> int:
    """What the process may still allocate: the smaller of the host's available memory and
    what its address-space limit (``ulimit -v``) leaves."""
    return min(_physical_available(), _address_space_left())


def _address_space_left() -> int:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return 1 << 62
    if soft == resource.RLIM_INFINITY:
        return 1 << 62
    try:
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        used = 0
    return max(soft - used, 0)


def _physical_available() -> int:
    """MemAvailable from /proc/meminfo where there is one, else free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse
