"""litetool.tui: the Textual app behind ``litetool tui`` (the only importer of textual).

Screens: live replication (``live_screen``), generations and restore points
(``timeline_screen`` with ``commit_histogram``), the restore dialog
(``restore_screen``, which runs ``litetool restore`` as a child process via
``restore_command``) and help. The app (``app``) gets a ``TuiOptions``
("attributes down"); workers report back with the typed messages of
``messages`` ("messages up"). ``restore_points``, ``display`` and
``daemon_client`` hold no widgets and are tested on their own.
"""

from litetool.tui.app import LitetoolApp, run_tui
from litetool.tui.options import ReplicaTarget, TuiOptions

__all__ = ["LitetoolApp", "ReplicaTarget", "TuiOptions", "run_tui"]
