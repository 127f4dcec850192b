"""litetool.restore: point-in-time restore from replicas.

``restore_point`` (pure: which replica, generation and txid a target names),
``plan`` (pure: index records + target -> plan), ``execute`` (parallel verified
downloads, pages straight into ``<OUT>.tmp``), ``page_map`` (each page written
once), ``output`` (temp file, integrity check, no-overwrite publish),
``progress`` (reporter interface), ``session`` (loading replicas, hints for
broken objects). See DESIGN.md section 7 and docs/ARCHITECTURE.md.
"""

from litetool.restore.execute import DEFAULT_PARALLELISM, RestoreResult, execute_plan
from litetool.restore.plan import (
    BrokenGeneration,
    PlannedSegment,
    RestorePlan,
    attach_detail,
    fallback_point,
    latest_reachable,
    plan_point,
    plan_restore,
)
from litetool.restore.progress import NullProgress, ProgressReporter
from litetool.restore.restore_point import Candidate, RestoreTarget, last_txid_at_or_before
from litetool.restore.session import (
    Loaded,
    broken_object_hint,
    fetch_detail,
    load_candidates,
    load_replicas,
    plan_fetching,
    restore_plan,
)

__all__ = [
    "DEFAULT_PARALLELISM",
    "BrokenGeneration",
    "Candidate",
    "Loaded",
    "NullProgress",
    "PlannedSegment",
    "ProgressReporter",
    "RestorePlan",
    "RestoreResult",
    "RestoreTarget",
    "attach_detail",
    "broken_object_hint",
    "execute_plan",
    "fallback_point",
    "fetch_detail",
    "last_txid_at_or_before",
    "latest_reachable",
    "load_candidates",
    "load_replicas",
    "plan_fetching",
    "plan_point",
    "plan_restore",
    "restore_plan",
]
