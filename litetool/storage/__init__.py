"""litetool.storage: the replica format and the only code that talks to object storage.

The replica format, pure (bytes in, values out): ``format`` (``keys``,
``envelope``, ``segment``, ``records``, ``manifest``, ``json_fields``,
``generation``, the view of a generation). Pure too: ``retention`` (what GC
keeps), ``location`` (URL parsing), ``aws_environment`` (an S3 replica's
endpoint, region and credentials).
I/O: ``store`` (the ``Store`` protocol every request goes through),
``obstore_store`` (its implementation over obstore, the only importer of
obstore with ``obstore_errors``, which translates its errors; reads of local
directories in ``local_file``), ``counting_store`` (a ``Store`` wrapper
counting requests in ``stats``), ``replica`` (the async API), ``index`` (the
index reader: record keys, views, tips), ``snapshot_upload``, ``lease``,
``gc``, ``concurrency`` (bounded gathers, thread hops). The byte-level format
is docs/FORMAT.md.
"""

from litetool.storage.format.envelope import (
    HEADER_SIZE,
    MAX_PAYLOAD_BYTES,
    Codec,
    ObjectKind,
    decode_object,
    digest_hex,
    encode_object,
)
from litetool.storage.format.generation import DetailNeeded, GenerationIndex, GenerationInfo
from litetool.storage.format.keys import (
    LEASE_KEY,
    MARKER_KEY,
    KeyKind,
    ParsedKey,
    compacted_record_key,
    index_record_key,
    new_generation_id,
    object_key,
    parse_generation_time_ms,
    parse_key,
    validate_digest,
    validate_generation,
)
from litetool.storage.format.manifest import (
    DEFAULT_CHUNK_SIZE,
    SnapshotManifest,
    decode_manifest,
    encode_manifest,
)
from litetool.storage.format.records import (
    IndexRecord,
    SegmentDetail,
    SegmentEntry,
    SnapshotEntry,
    decode_record,
    encode_record,
)
from litetool.storage.format.segment import (
    Segment,
    SegmentTransaction,
    concat_segments,
    decode_segment,
    encode_segment,
)
from litetool.storage.gc import GcReport
from litetool.storage.lease import Lease, LeaseDocument
from litetool.storage.location import Location, parse_location
from litetool.storage.obstore_store import forget_memory_stores
from litetool.storage.replica import ObjectRef, Replica
from litetool.storage.retention import RetentionPlan, plan_retention
from litetool.storage.stats import RequestCounts, RequestStats

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "LEASE_KEY",
    "MARKER_KEY",
    "MAX_PAYLOAD_BYTES",
    "Codec",
    "DetailNeeded",
    "GcReport",
    "GenerationIndex",
    "GenerationInfo",
    "IndexRecord",
    "KeyKind",
    "Lease",
    "LeaseDocument",
    "Location",
    "ObjectKind",
    "ObjectRef",
    "ParsedKey",
    "Replica",
    "RequestCounts",
    "RequestStats",
    "RetentionPlan",
    "Segment",
    "SegmentDetail",
    "SegmentEntry",
    "SegmentTransaction",
    "SnapshotEntry",
    "SnapshotManifest",
    "compacted_record_key",
    "concat_segments",
    "decode_manifest",
    "decode_object",
    "decode_record",
    "decode_segment",
    "digest_hex",
    "encode_manifest",
    "encode_object",
    "encode_record",
    "encode_segment",
    "forget_memory_stores",
    "index_record_key",
    "new_generation_id",
    "object_key",
    "parse_generation_time_ms",
    "parse_key",
    "parse_location",
    "plan_retention",
    "validate_digest",
    "validate_generation",
]
