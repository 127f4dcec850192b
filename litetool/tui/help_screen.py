"""``?``: what the screens show and every key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from litetool.tui.footer import KeysFooter

HELP_TEXT = """\
# litetool tui

**Live** (`l`): every database the engine replicates (generation, last
captured txid and commit time, WAL and spool size, checkpoints) and every
replica (state, published txid, lag in transactions and commit time, last
sync, errors), with the event log underneath. Its source is an in-process
engine (stopped with a final sync when you quit), or a daemon attached with
`--attach HOST:PORT`. When the daemon stops answering, every state says
`unknown` and the tables keep what it said last (no ages: they would
freeze) until it answers again; when the in-process engine stops with an
error, they say `stopped` and the error is shown above them (and printed
when you quit).

**Timeline** (`t`): the generations of a replica and the restore points of the
selected one: a histogram of commits over time (the picked point is marked
`▲`) and one row per transaction. The index names each segment's first and
last commit; `…` is a commit time or size inside a segment not fetched yet:
the rows on screen are fetched when you stop on them (the histogram spreads a
segment's commits evenly until then). With a live engine or daemon the
timeline refreshes by itself when the replica publishes (at most every 2 s),
and follows the latest point if it was picked; browsing a replica alone,
`ctrl+r` lists it again.

**Zoom** (`+` / `-`): one histogram column is the whole generation spread
over the width, or one day, hour, minute or second (the levels finer than
the whole generation); `←` `→` then step to the previous or next day, hour,
minute or second with commits.

**Restore** (`enter` on a restore point): type the output path (it must not
exist); `enter` shows the plan (`litetool restore --dry-run`) and moves to
`Restore`: `enter` again writes it. Changing the path afterwards plans again
by itself.

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
| `+` / `-` | timeline | zoom in / out: whole generation, day, hour, minute, second per column |
| `g` | timeline | go to a time (`2026-11-25T04:38Z`, `-15m`, `2h ago`) or `#txid` |
| `r` | timeline | next replica (when the database has several) |
| `ctrl+r` | timeline | list the replica again |
| `escape` | restore points | back to the generations |
| `enter` | restore points | restore this point |
| `escape` | dialogs | close / cancel a running restore |
| `tab` | everywhere | next widget |

Times are UTC: commit times are the capture wall clock in UTC. Under 120
columns (live) and 100 columns (timeline) the tables leave out their least
essential columns; widen the terminal to see them all.
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
        yield KeysFooter()
