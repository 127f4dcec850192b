"""The replication engine: capture committed transactions, spool, ship.

See docs/ARCHITECTURE.md. Blocking work (sqlite3, file I/O, hashing,
compression) runs in threads; replica syncs run on asyncio.
"""
