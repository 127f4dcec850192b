"""Sync: the replica side of replication, one task per replica.

The sync loop (``replica_sync``) turns spooled transactions into segments
(``segment_build``, ``segment_publish``) and index records, starts or resumes
the replica's generation (``generation_start``), publishes snapshots
(``snapshot_publish``), runs upkeep (``upkeep``: snapshots, compaction,
garbage collection), reports health (``replica_health``) and publishes its
progress as one immutable value (``replica_progress``). It never opens the
database: the capture side hands it a ``DatabaseImage``.
"""
