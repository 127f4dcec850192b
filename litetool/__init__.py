"""litetool: continuous backup and point-in-time restore for SQLite.

Keep this module free of imports: ``litetool --help`` and ``litetool version``
must start in well under 60 ms, so heavy packages load lazily where used.
"""

__version__ = "0.1.0"
