"""litetool.restore: point-in-time restore from replicas.

``plan`` (pure: index records + target -> plan), ``execute`` (parallel verified
downloads, pages straight into ``<OUT>.tmp``), ``page_map`` (each page written
once), ``output`` (temp file, integrity check, no-overwrite publish),
``progress`` (reporter interface), ``session`` (loading replicas, hints for
broken objects). See DESIGN.md section 7 and docs/ARCHITECTURE.md.
"""

from litetool.restore.execute import DEFAULT_PARALLELISM, RestoreResult, execute_plan
from litetool.restore.plan import (
    Candidate,
    PlannedSegment,
    RestorePlan,
    RestoreTarget,
    fallback_point,
    last_txid_at_or_before,
    plan_for_txid,
    plan_restore,
)
from litetool.restore.progress import NullProgress, ProgressReporter
from litetool.restore.session import broken_object_hint, load_candidates, restore_plan

__all__ = [
    "DEFAULT_PARALLELISM",
    "Candidate",
    "NullProgress",
    "PlannedSegment",
    "ProgressReporter",
    "RestorePlan",
    "RestoreResult",
    "RestoreTarget",
    "broken_object_hint",
    "execute_plan",
    "fallback_point",
    "last_txid_at_or_before",
    "load_candidates",
    "plan_for_txid",
    "plan_restore",
    "restore_plan",
]
