"""`litetool --help` and `version` stay light: no asyncio or heavy packages at start-up.

Start-up *time* is measured by bench/startup.py; this checks the cause that
keeps it low (what gets imported), which does not depend on machine load.
"""

import subprocess
import sys

HEAVY = ("asyncio", "numpy", "obstore", "pydantic", "pydantic_settings", "textual", "zstandard")


def test_version_and_help_import_nothing_heavy():
    for argv in (["version"], ["--help"]):
        code = (
            f"import sys, runpy; sys.argv = ['litetool', *{argv!r}];\n"
            "from litetool.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', ' '.join(sorted(set(sys.modules))))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        loaded = set(out.stdout.split("LOADED", 1)[1].split())
        assert not [m for m in HEAVY if m in loaded], (argv, [m for m in HEAVY if m in loaded])
