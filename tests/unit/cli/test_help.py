"""Each command's --help: examples that the real parser accepts, defaults that are true."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from litetool.cli import COMMANDS, build_parser
from litetool.cli.examples import EXAMPLES

REPO = Path(__file__).resolve().parents[3]


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parser_for(path: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of ``litetool PATH...`` as ``litetool PATH... --help`` builds it."""
    parser = build_parser(path[0])
    for name in path:
        parser = sub_parsers(parser)[name]
    return parser


def command_paths() -> list[tuple[str, ...]]:
    paths = []
    for name, parser in sub_parsers(build_parser()).items():
        paths.append((name,))
        paths += [(name, action) for action in sub_parsers(parser)]
    return paths


PATHS = command_paths()


def examples_in(help_text: str) -> list[list[str]]:
    """The example command lines of a help text, split as a shell would, without the
    environment assignments some start with."""
    assert "\nexamples:\n" in help_text, help_text
    section = help_text.split("\nexamples:\n", 1)[1]
    examples = []
    for line in section.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line)
        while re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):
            argv = argv[1:]
        examples.append(argv)
    return examples


def parse(argv: list[str]) -> argparse.Namespace:
    """``litetool ARGV`` through the real parser; a refusal fails with argparse's words."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"litetool {shlex.join(argv)}: {stderr.getvalue().strip()}")


def test_every_command_and_action_has_examples():
    assert {path[0] for path in PATHS} == {name for name, _, _ in COMMANDS}
    assert {" ".join(path) for path in PATHS} == set(EXAMPLES)


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_example_in_the_help_is_a_command_that_works(path):
    examples = examples_in(parser_for(path).format_help())
    assert len(examples) >= (1 if path == ("version",) else 2)
    for argv in examples:
        assert argv[0] == "litetool", argv
        assert tuple(argv[1 : 1 + len(path)]) == path, argv
        args = parse(argv[1:])
        check_values(args)


def check_values(args: argparse.Namespace) -> None:
    """What the parser takes as text but the command reads later must read too."""
    from litetool.cli.restore import _positive_int, parse_target
    from litetool.engine.metrics import parse_addr
    from litetool.storage import validate_generation
    from litetool.timespec import parse_duration

    if args.command == "restore":
        parse_target(args)  # --at, --txid, --generation
        _positive_int("--parallelism", args.parallelism, 1)
    elif getattr(args, "generation", None):
        validate_generation(args.generation)
    for name in ("addr", "attach", "metrics_addr"):
        if getattr(args, name, None):
            parse_addr(getattr(args, name))
    for name in ("sync_interval", "snapshot_interval"):
        if getattr(args, name, None):
            parse_duration(getattr(args, name))
    if getattr(args, "replica_urls", None):
        from litetool.storage.location import parse_location

        for url in args.replica_urls:
            parse_location(url)


def test_the_examples_module_is_what_the_help_shows():
    help_text = parser_for(("restore",)).format_help()
    for line in EXAMPLES["restore"].splitlines():
        assert line in help_text.splitlines()


# -- defaults -------------------------------------------------------------------------------


def config_toml() -> dict:
    return tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))


def model_default(model: str, field: str):
    from litetool.config import model as config_model

    return getattr(config_model, model).model_fields[field].default


# (command, option): the default its help names, and where that default really comes from.
DEFAULTS = {
    ("replicate", "--sync-interval"): (
        "1s",
        lambda: [
            model_default("ReplicaConfig", "sync_interval"),
            config_toml()["databases"][0]["replicas"][0]["sync-interval"],
        ],
    ),
    ("replicate", "--snapshot-interval"): (
        "24h",
        lambda: [
            model_default("DatabaseConfig", "snapshot_interval"),
            config_toml()["databases"][0]["snapshot-interval"],
        ],
    ),
    ("replicate", "--log-level"): (
        "info",
        lambda: [model_default("LogConfig", "level"), config_toml()["log"]["level"]],
    ),
    ("daemon", "--log-level"): (
        "log.level from the config, else info",
        lambda: [model_default("LogConfig", "level")],
    ),
    ("replicate", "--log-format"): (
        "text",
        lambda: [model_default("LogConfig", "format"), config_toml()["log"]["format"]],
    ),
    ("daemon", "--log-format"): (
        "log.format from the config, else text",
        lambda: [model_default("LogConfig", "format")],
    ),
    ("replicate", "--metrics-addr"): ("off", lambda: [model_default("MetricsConfig", "addr")]),
    ("daemon", "--metrics-addr"): (
        "metrics.addr from the config, else off",
        lambda: [model_default("MetricsConfig", "addr")],
    ),
    ("restore", "--parallelism"): ("8", lambda: [restore_parallelism()]),
    ("config init", "path"): ("./litetool.toml", lambda: ["./" + local_config()]),
}


def restore_parallelism() -> int:
    from litetool.restore import DEFAULT_PARALLELISM

    return DEFAULT_PARALLELISM


def local_config() -> str:
    from litetool.config import LOCAL_CONFIG_PATH

    return LOCAL_CONFIG_PATH


def same_value(shown: str, actual) -> bool:
    from litetool.timespec import parse_duration

    if shown == "off":
        return actual == ""
    if isinstance(actual, float):
        return parse_duration(shown) == actual
    if isinstance(actual, str) and re.fullmatch(r"\d+[a-z]+", actual):
        return parse_duration(shown) == parse_duration(actual)  # a duration in config.toml
    return shown == str(actual)


def option_helps() -> dict[tuple[str, str], argparse.Action]:
    found = {}
    for path in PATHS:
        for action in parser_for(path)._actions:
            key = action.option_strings[-1] if action.option_strings else action.dest
            found[(" ".join(path), key)] = action
    return found


def test_the_defaults_the_help_names_are_the_real_ones():
    actions = option_helps()
    for (command, option), (shown, sources) in DEFAULTS.items():
        action = actions[(command, option)]
        assert f"default: {shown}" in " ".join(action.help.split()), (command, option)
        final = shown.rsplit(" else ", 1)[-1]
        for actual in sources():
            assert same_value(final, actual), (command, option, shown, actual)
        if action.default is not None:  # what the parser itself puts in
            assert same_value(final, action.default) or action.default == final.removeprefix(
                "./"
            ), (command, option, action.default)


def test_every_default_named_in_a_help_is_checked():
    """A new "(default: ...)" must join DEFAULTS, unless it names no value of its own."""
    not_values = (
        "$LITETOOL_CONFIG",  # the config search order: test_the_config_search_order_is_true
        "the database's own path",
        "as fits the target",
        "metrics.addr from the config)",
    )
    for (command, option), action in option_helps().items():
        text = " ".join((action.help or "").split())
        if "default" not in text or (command, option) in DEFAULTS:
            continue
        assert any(phrase in text for phrase in not_values), (command, option, text)


def test_the_config_search_order_is_true():
    from litetool.cli.output import CONFIG_HELP
    from litetool.config import DEFAULT_CONFIG_PATH, ENV_CONFIG, LOCAL_CONFIG_PATH

    assert f"${ENV_CONFIG}, ./{LOCAL_CONFIG_PATH}, {DEFAULT_CONFIG_PATH}" in CONFIG_HELP
    for (_, option), action in option_helps().items():
        if option == "--config":
            assert action.help == CONFIG_HELP
