"""litetool.tui: the Textual app behind ``litetool tui`` (the only importer of textual).

Screens: live replication (``live_screen``), generations and restore points
(``timeline_screen`` with ``restore_point_browser``, ``timeline_tables``,
``commit_histogram``, ``zoom``, ``goto_bar``, ``segment_details`` and
``replica_index``), the restore dialog
(``restore_screen``, which runs ``litetool restore`` as a child process via
``restore_command``) and help; every screen has the ``footer`` (Quit and Help
first) and tables whose ``columns`` fit 80 columns. The app (``app``) gets a
``TuiOptions`` ("attributes down"); workers and widgets report back with the
typed messages of ``messages`` ("messages up").

``options``, ``restore_points``, ``segment_details``, ``replica_index``,
``zoom``, ``restore_command``, ``daemon_client`` and ``display`` hold no
widgets and do not import textual, so importing this package stays cheap
until ``LitetoolApp`` or ``run_tui`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litetool.tui.options import ReplicaTarget, TuiOptions

if TYPE_CHECKING:
    from litetool.tui.app import LitetoolApp, run_tui

__all__ = ["LitetoolApp", "ReplicaTarget", "TuiOptions", "run_tui"]


def __getattr__(name: str) -> Any:
    if name in ("LitetoolApp", "run_tui"):
        from litetool.tui import app

        return getattr(app, name)
    raise AttributeError(f"module 'litetool.tui' has no attribute {name!r}")
