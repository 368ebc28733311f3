"""glibc's malloc keeps a step's large blocks in the heap once vaehub tunes it."""

import ctypes.util
import subprocess
import sys

import pytest

from vaehub.utils import allocator

libc_name = ctypes.util.find_library("c")
glibc = False
if libc_name is not None:
    glibc = hasattr(ctypes.CDLL(libc_name), "mallinfo2")

# In a fresh interpreter: allocate and free a 16 MiB block, and count the blocks glibc
# served with mmap (mallinfo2's hblks) while it was alive.
PROBE = """
import ctypes, ctypes.util, importlib.util, sys
# The module alone, without importing torch through the package: the probe stays quick.
spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
keep_freed_memory = allocator.keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else False
before = libc.mallinfo2().hblks
block = libc.malloc(16 << 20)
during = libc.mallinfo2().hblks
libc.free(block)
print(int(tuned), during - before)
"""


def probe(mode: str, **environment: str) -> tuple[int, int]:
    import os

    output = subprocess.run(
        [sys.executable, "-c", PROBE, mode, allocator.__file__],
        env=os.environ | environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(output[0]), int(output[1])


@pytest.mark.skipif(not glibc, reason="glibc's malloc only")
def test_a_large_block_comes_from_the_heap_once_tuned():
    assert probe("default") == (0, 1)  # glibc's default: a 16 MiB block is mmapped
    assert probe("tuned") == (1, 0)


@pytest.mark.skipif(not glibc, reason="glibc's malloc only")
def test_the_environment_switch_keeps_glibc_defaults():
    assert probe("tuned", VAEHUB_KEEP_FREED_MEMORY="0") == (0, 1)
