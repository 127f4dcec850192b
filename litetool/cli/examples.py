"""The examples at the end of each command's ``--help``.

Every line that starts with ``litetool`` is a command a user can paste: the
test suite parses each one with the real parser (``tests/unit/cli/test_help.py``),
so an example cannot outlive a renamed flag. A ``#`` line says what the next
one does. Keys are command names; ``config init`` and ``config show`` are the
actions of ``config``.
"""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "replicate": """\
  # replicate app.db to a local directory (Ctrl-C: a final sync, then exit)
  litetool replicate app.db file:///backups/app
  # to S3 (credentials from the AWS_* environment variables), uploading every 10s
  litetool replicate app.db s3://my-bucket/app --sync-interval 10s
  # run the application as a child: replication stops when it exits
  litetool replicate app.db file:///backups/app --exec "gunicorn app:app"
""",
    "daemon": """\
  # every database in ./litetool.toml (or $LITETOOL_CONFIG, /etc/litetool.toml)
  litetool daemon
  # another config file, serving /metrics and /status (litetool status, litetool tui)
  litetool daemon --config /etc/litetool.toml --metrics-addr 127.0.0.1:9717
""",
    "restore": """\
  # the latest restore point of a replica
  litetool restore -o restored.db file:///backups/app
  # the last transaction committed at or before midnight UTC, 1 January 2021
  litetool restore --at 2021-01-01T00:00Z -o restored.db file:///backups/app
  # exactly transaction 1234 (litetool generations lists the txids there are)
  litetool restore --txid 1234 -o restored.db file:///backups/app
  # a database from the config, to its own path, unless it exists or has no backup yet
  litetool restore --if-db-not-exists --if-replica-exists /var/lib/app/app.db
  # print the plan for 15 minutes ago; restore nothing
  litetool restore --dry-run --at "15m ago" file:///backups/app
""",
    "databases": """\
  litetool databases
  litetool databases --json --config /etc/litetool.toml
""",
    "generations": """\
  litetool generations file:///backups/app
  # a database from the config: LAG is each replica's lag while its daemon runs
  litetool generations /var/lib/app/app.db
  litetool generations --json s3://my-bucket/app
""",
    "snapshots": """\
  litetool snapshots file:///backups/app
  litetool snapshots --generation 01a24f000a21755e --json file:///backups/app
""",
    "segments": """\
  litetool segments file:///backups/app
  litetool segments --replica local /var/lib/app/app.db
""",
    "verify": """\
  litetool verify file:///backups/app
  # a database from the config: also compared with the live database
  litetool verify /var/lib/app/app.db
""",
    "status": """\
  # the daemon at metrics.addr of ./litetool.toml
  litetool status
  litetool status --addr 127.0.0.1:9717 --json
""",
    "tui": """\
  # the databases of ./litetool.toml (attached to their daemon when it runs)
  litetool tui
  # browse the restore points of a replica, read-only
  litetool tui file:///backups/app
  # watch a running daemon
  litetool tui --attach 127.0.0.1:9717
""",
    "config": """\
  litetool config init --db /var/lib/app/app.db --replica file:///var/backups/app
  litetool config show --config /etc/litetool.toml
""",
    "config init": """\
  litetool config init --db /var/lib/app/app.db --replica file:///var/backups/app
  litetool config init /etc/litetool.toml --db app.db --replica s3://bucket/app
""",
    "config show": """\
  litetool config show
  # what litetool daemon would run with: the file, then LITETOOL_* variables
  LITETOOL_LOG__LEVEL=debug litetool config show --config /etc/litetool.toml
""",
    "version": """\
  litetool version
""",
}


def epilog(command: str, notes: str | None = None) -> str:
    """The text after a command's options: its *notes* (already wrapped), then its
    examples."""
    parts = [notes.rstrip("\n")] if notes else []
    parts.append("examples:\n" + EXAMPLES[command].rstrip("\n"))
    return "\n\n".join(parts)
