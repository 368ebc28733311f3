"""Keep freed memory in the process: glibc's malloc tuned for the text VAE's steps.

Every training step allocates and frees the same few large blocks: the (tokens ×
vocabulary) block of the fused output layer, the LSTM's gate buffers, their gradients.
glibc serves blocks above its mmap threshold with a fresh `mmap` and gives them back
with `munmap` when freed, and trims the heap top back to the kernel as soon as it is
free; the next step then faults every page in again. Raising both thresholds keeps those
blocks in the heap, where the next step reuses them; `benchmarks/time_ptb_epoch.py`
measures what that gives a PTB epoch (`benchmarks/results/ptb_epoch.json`). The price:
memory the process frees goes back to the system only when it exits, and a step's own
peak bounds it anyway.

`vaehub` commands call `keep_freed_memory()` when they start; set
`VAEHUB_KEEP_FREED_MEMORY=0` to keep glibc's defaults. In Python, call it yourself
before training.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Larger than any block a step at the papers' settings asks for; the most `mallopt`
# takes is an int.
THRESHOLD_BYTES = 1 << 30
ENVIRONMENT_SWITCH = "VAEHUB_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to `THRESHOLD_BYTES` for this process.

    Returns True when both were set; False, changing nothing, where the C library is not
    glibc (macOS, Windows, musl), or when `VAEHUB_KEEP_FREED_MEMORY=0`.
    """
    if os.environ.get(ENVIRONMENT_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return False
    # Only glibc has gnu_get_libc_version, and only glibc's mallopt numbers are the above.
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES)
    )
