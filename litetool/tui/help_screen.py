"""``?``: what the screens show and every key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP_TEXT = """\
# litetool tui

**Live** (`l`): every database the engine replicates (generation, last
captured txid and commit time, WAL and spool size, checkpoints) and every
replica (state, published txid, lag in transactions and commit time, last
sync, errors), with the event log underneath. Its source is an in-process
engine (stopped with a final sync when you quit), or a daemon attached with
`--attach HOST:PORT`.

**Timeline** (`t`): the generations of a replica and the restore points of the
selected one: a histogram of commits over time (the picked point is marked
`▲`) and one row per transaction. The index names each segment's first and
last commit; `…` is a commit time or size inside a segment not fetched yet:
the rows on screen are fetched when you stop on them (the histogram spreads a
segment's commits evenly until then).

**Restore** (`enter` on a restore point): type the output path (it must not
exist), `enter` shows the plan (`litetool restore --dry-run`), `Restore`
writes it.

| Key | Where | Action |
|-----|-------|--------|
| `q` | everywhere | quit (an in-process engine stops after a final sync; `q` again forces) |
| `?` | everywhere | this help |
| `l` / `t` | everywhere | live screen / timeline |
| `e` | live | engine log instead of events (in-process engine) |
| `c` | live | clear the event log |
| `↑` `↓` `pgup` `pgdn` | tables | move |
| `enter` | generations | show its restore points |
| `←` `→` or `[` `]` | restore points | previous / next time slice of the histogram |
| `g` | timeline | go to a time (`2026-11-25T04:38Z`, `-15m`, `2h ago`) or `#txid` |
| `r` | timeline | next replica (when the database has several) |
| `ctrl+r` | timeline | list the replica again |
| `enter` | restore points | restore this point |
| `escape` | dialogs | close / cancel a running restore |
| `tab` | everywhere | next widget |

Times are UTC: commit times are the capture wall clock in UTC.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help {
        width: 90%; max-width: 100; height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP_TEXT)
