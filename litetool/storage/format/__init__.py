"""litetool.storage.format: the replica format, pure (bytes in, values out).

``keys`` (object names), ``envelope`` (the header in front of every object:
kind, codec, length, digest), ``segment`` (transactions' pages),
``records`` (index records), ``manifest`` (snapshot manifests),
``json_fields`` (strict JSON field parsing) and ``generation`` (the view of
one generation's records: restore points, snapshots, segments). No I/O, no
asyncio, no object storage: an import contract keeps it so. The byte-level
format is docs/FORMAT.md.
"""
