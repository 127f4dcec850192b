"""``litetool version``."""

from __future__ import annotations

import argparse

from litetool import __version__


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(f"litetool {__version__}")
    return 0
