"""Capture: the database side of replication.

Reading committed transactions from the live WAL into the spool before SQLite
can overwrite them (``capture``, behind the read fence of ``fence``), their
commit times (``commit_clock``), noticing new commits (``wakeup``), litetool's
own checkpoints (``checkpoint``), braking the application's writers
(``brake``), consistent images of the database (``snapshot``), keeping the
page digests and the seal a restart proves continuity with
(``digest_keeper``), and the whole side of one database (``capture_side``).
Nothing here imports ``litetool.engine.sync``: replicas are followers it wakes.
"""
