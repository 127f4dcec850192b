"""The footer of every screen: Quit and Help first, then the keys of what has the focus.

Textual's footer lists the focused widget's keys first and the app's last, so
on an 80-column terminal Quit and Help were cut off. This one puts them first,
then what ``enter`` does, then the rest in Textual's order (a narrow terminal
cuts the last ones), uses the compact style, and shows keys that share a
``Binding.Group`` as one entry (``←→ Earlier/later``).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

# Always first, in this order: leaving, help, and what enter does where the focus is.
FIRST_ACTIONS = ("quit", "help", "select_cursor")


def _rank(binding: Binding) -> int:
    action = binding.action.removeprefix("app.")
    return FIRST_ACTIONS.index(action) if action in FIRST_ACTIONS else len(FIRST_ACTIONS)


class KeysFooter(Footer):
    DEFAULT_CSS = """
    KeysFooter.-compact FooterLabel { margin: 0 1 0 0; }
    KeysFooter.-compact KeyGroup.-compact { padding-left: 0; }
    """

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def compose(self) -> Iterator[Widget]:
        if not self._bindings_ready:
            return
        shown: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in shown:
                shown[binding.action] = (binding, enabled, tooltip)
        ordered = sorted(shown.values(), key=lambda item: _rank(item[0]))
        for group, members in groupby(ordered, lambda item: item[0].group):
            items = list(members)
            if group is not None and len(items) > 1:
                yield KeyGroup(
                    *(
                        self._key(binding, enabled, tooltip or binding.description, grouped=True)
                        for binding, enabled, tooltip in items
                    ),
                    classes="-compact" if group.compact else "",
                )
                yield FooterLabel(group.description)
                continue
            for binding, enabled, tooltip in items:
                yield self._key(binding, enabled, tooltip)

    def _key(self, binding: Binding, enabled: bool, tooltip: str, *, grouped: bool = False):
        return FooterKey(
            binding.key,
            self.app.get_key_display(binding),
            "" if grouped else binding.description,
            binding.action,
            disabled=not enabled,
            tooltip=tooltip,
            classes="-grouped" if grouped else "",
        ).data_bind(compact=Footer.compact)
