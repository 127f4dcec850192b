"""litetool.wal stays pure and cheap to import."""

import subprocess
import sys

PROBE = """
import sys
import litetool.wal
loaded = sorted(name for name in ("numpy", "sqlite3", "asyncio", "socket", "obstore",
                                  "litetool.storage", "litetool.engine") if name in sys.modules)
print(",".join(loaded))
"""


def test_import_loads_no_numpy_and_no_io_modules() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""


def test_numpy_loads_on_first_batched_read() -> None:
    probe = (
        "import sys\n"
        "from litetool.wal import decode_wal, new_wal_header, encode_wal_header\n"
        "decode_wal(encode_wal_header(new_wal_header(page_size=512, salts=(1, 2))))\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True"
