"""Counts in messages: ``1 restore point``, ``2 restore points``, never ``1 restore points``."""

import re
from pathlib import Path

import pytest

from litetool.wording import plural

PACKAGE = Path(__file__).resolve().parents[2] / "litetool"


@pytest.mark.parametrize(
    "count, noun, plural_noun, expected",
    [
        (0, "object", None, "0 objects"),
        (1, "object", None, "1 object"),
        (2, "object", None, "2 objects"),
        (1, "restore point", None, "1 restore point"),
        (12345, "restore point", None, "12345 restore points"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
        (-1, "transaction", None, "-1 transactions"),
    ],
)
def test_plural(count, noun, plural_noun, expected):
    assert plural(count, noun, plural_noun) == expected


# A value put straight before a plural noun in an f-string: "{len(points)} restore points"
# says "1 restore points" for one. Units (bytes, seconds) and "a/b objects" counters are
# not sentences and may stay.
NOUNS = (
    "restore point|object|transaction|segment|snapshot|generation|record|event|database|"
    "replica|frame|page|chunk|entrie|row|order|error|failure|request|checkpoint|file"
)
COUNT_BEFORE_PLURAL = re.compile(r"(?<!/)\{[^{}!]+\} (?:" + NOUNS + r")s\b")


def test_no_message_puts_a_count_before_a_plural_noun():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if COUNT_BEFORE_PLURAL.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "use litetool.wording.plural:\n" + "\n".join(found)
