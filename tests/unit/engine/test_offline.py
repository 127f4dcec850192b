"""The live database's replicated point without a daemon (``litetool verify``).

Over a real database and the spool a capture side left when it stopped; the
point's digest is compared with the digest of the image SQLite serializes,
written to a file as a restore would write it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3

from continuity_builders import change_page_size, commit_rows, database_config, replicated

from litetool.engine.continuity.page_digests import PageDigests
from litetool.engine.offline import LivePoint, live_point
from litetool.engine.validation import file_digest


def restored_digest(app: sqlite3.Connection, tmp_path) -> str:
    path = tmp_path / "image.db"
    path.write_bytes(app.serialize())
    return file_digest(path)


def lock_is_free(spool_dir) -> bool:
    fd = os.open(spool_dir / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_database_never_replicated_has_no_point_and_gets_no_spool(tmp_path):
    db = tmp_path / "plain.db"
    sqlite3.connect(db).close()
    config = database_config(db)
    assert live_point(config) == LivePoint(
        None, None, None, "litetool has never replicated this database"
    )
    assert not config.resolved_spool_dir().exists()


def test_a_database_a_daemon_replicates_is_left_to_the_daemon(tmp_path):
    with replicated(tmp_path) as r:
        point = live_point(database_config(r.db))
    assert point == LivePoint(
        None,
        None,
        None,
        "a litetool daemon is replicating it (set metrics.addr so verify can ask it)",
    )


def test_a_database_unchanged_since_a_clean_stop_gives_the_digest_of_its_image(tmp_path):
    with replicated(tmp_path) as r:
        generation, txid = r.side.generation, r.side.capture.txid
        r.stop(seal=True)
        seal_bytes = (r.spool_dir / "seal.json").read_bytes()
        point = live_point(database_config(r.db))
        expected = restored_digest(r.app, tmp_path)
        # The seal is only read; the spool is free again for a daemon.
        assert (r.spool_dir / "seal.json").read_bytes() == seal_bytes
        assert lock_is_free(r.spool_dir)
    assert point == LivePoint(generation, txid, expected, None)


def test_commits_not_replicated_yet_give_the_point_without_a_digest(tmp_path):
    with replicated(tmp_path) as r:
        generation, txid = r.side.generation, r.side.capture.txid
        r.stop(seal=True)
        commit_rows(r.app, 3)
        point = live_point(database_config(r.db))
    assert point == LivePoint(
        generation, txid, None, "the live database has 3 transactions not replicated yet"
    )


def test_a_database_that_changed_while_down_is_not_comparable(tmp_path):
    with replicated(tmp_path) as r:
        r.stop(seal=True)
        change_page_size(r.app, 8192)
        point = live_point(database_config(r.db))
    assert point == LivePoint(
        None,
        None,
        None,
        "not comparable: the page size changed from 4096 to 8192 while litetool was not running",
    )


def test_without_a_seal_the_page_digests_prove_and_move_forward(tmp_path):
    with replicated(tmp_path) as r:
        r.build_digests()
        built_at = r.side.capture.txid
        r.commit_and_capture(3)
        generation, txid = r.side.generation, r.side.capture.txid
        r.stop(seal=False)  # as if killed: the digests stay where they were
        point = live_point(database_config(r.db))
        expected = restored_digest(r.app, tmp_path)
        table, _ = PageDigests.open(r.spool_dir)
        try:
            moved_to = table.txid
        finally:
            table.close()
    assert built_at < txid
    assert point == LivePoint(generation, txid, expected, None)
    assert moved_to == txid


def test_a_spool_of_another_format_holds_no_generation(tmp_path):
    db = tmp_path / "plain.db"
    sqlite3.connect(db).close()
    config = database_config(db)
    spool_dir = config.resolved_spool_dir()
    spool_dir.mkdir()
    (spool_dir / "state.json").write_text(json.dumps({"spool_format": -1}), encoding="utf-8")
    point = live_point(config)
    assert point == LivePoint(None, None, None, "the spool holds no generation yet")
    assert lock_is_free(spool_dir)
