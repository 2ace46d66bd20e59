"""Process-level memory settings for the long-running operator.

glibc gives each thread that allocates its own malloc arena (up to 8 per core); with a dozen
threads (workers, informers, timers, servers) the freed memory of large short-lived allocations
(JSON pages of a list, response bodies) stays scattered over many arenas and is not returned to
the system. Two arenas keep the RSS close to what is live. No effect (and no error) off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameter number of M_ARENA_MAX in glibc's malloc.h.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas; call before starting threads. True when applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
