"""The restored file's life cycle: temp file, ordinary database, no-overwrite publish."""

from __future__ import annotations

import os
import sqlite3

import pytest

from litetool.errors import OutputExists, RestoreError
from litetool.restore.output import RestoreOutput, check_output_free


def wal_database(path, rows=50):
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    connection.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    image = path.read_bytes()
    assert image[18:20] == b"\x02\x02"
    return image


def write_image(output, image):
    os.pwrite(output.fd, image, 0)


def test_publish_makes_an_ordinary_database_and_leaves_nothing_else(tmp_path):
    image = wal_database(tmp_path / "source.db")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = RestoreOutput(out_dir / "restored.db")
    output.open()
    assert sorted(os.listdir(out_dir)) == ["restored.db.tmp"]
    write_image(output, image)
    output.publish(len(image) // 4096, 4096)
    output.close()
    assert sorted(os.listdir(out_dir)) == ["restored.db"]
    restored = (out_dir / "restored.db").read_bytes()
    assert restored[18:20] == b"\x01\x01"
    assert restored[:18] == image[:18] and restored[20:] == image[20:]
    # An ordinary database: reading it creates no -wal/-shm.
    connection = sqlite3.connect(f"file:{out_dir / 'restored.db'}?mode=ro", uri=True)
    assert connection.execute("SELECT count(*) FROM t").fetchone() == (50,)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    connection.close()
    assert sorted(os.listdir(out_dir)) == ["restored.db"]


def test_publish_truncates_to_the_final_size(tmp_path):
    image = wal_database(tmp_path / "source.db")
    output = RestoreOutput(tmp_path / "restored.db")
    output.open()
    write_image(output, image + bytes(4096 * 3))
    output.publish(len(image) // 4096, 4096)
    output.close()
    assert (tmp_path / "restored.db").stat().st_size == len(image)


def test_publish_refuses_an_image_that_is_not_a_database(tmp_path):
    output = RestoreOutput(tmp_path / "restored.db")
    output.open()
    write_image(output, b"not a database".ljust(4096, b"\0"))
    with pytest.raises(RestoreError, match="no SQLite database header"):
        output.publish(1, 4096)
    output.discard()
    assert os.listdir(tmp_path) == []


def test_publish_refuses_a_page_size_other_than_the_replicas(tmp_path):
    image = wal_database(tmp_path / "source.db")
    (tmp_path / "source.db").unlink()
    output = RestoreOutput(tmp_path / "restored.db")
    output.open()
    write_image(output, image)
    with pytest.raises(RestoreError, match="page size 4096 in its header"):
        output.publish(len(image) // 1024, 1024)
    output.discard()
    assert os.listdir(tmp_path) == []


def test_publish_never_replaces_a_file_that_appeared(tmp_path):
    image = wal_database(tmp_path / "source.db")
    out = tmp_path / "restored.db"
    output = RestoreOutput(out)
    output.open()
    write_image(output, image)
    out.write_bytes(b"theirs")
    with pytest.raises(OutputExists, match="appeared while restoring"):
        output.publish(len(image) // 4096, 4096)
    output.discard()
    assert out.read_bytes() == b"theirs"
    assert sorted(os.listdir(tmp_path)) == ["restored.db", "source.db"]


def test_discard_after_publish_removes_only_our_own_output(tmp_path):
    image = wal_database(tmp_path / "source.db")
    out = tmp_path / "restored.db"
    output = RestoreOutput(out)
    output.open()
    write_image(output, image)
    output.publish(len(image) // 4096, 4096)
    output.discard()  # interrupted in the last step: nothing is left at OUT
    assert not out.exists()

    other = RestoreOutput(out)
    other.open()
    write_image(other, image)
    other.publish(len(image) // 4096, 4096)
    out.unlink()
    out.write_bytes(b"replaced by someone")
    other.discard()
    assert out.read_bytes() == b"replaced by someone"


def test_check_output_free(tmp_path):
    check_output_free(tmp_path / "free.db")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExists):
        check_output_free(tmp_path / "dangling")
    with pytest.raises(OutputExists):
        check_output_free(tmp_path)
    (tmp_path / "x.db-shm").write_bytes(b"")
    check_output_free(tmp_path / "x.db")  # a stale -shm is harmless: SQLite rebuilds it


def test_discard_is_idempotent(tmp_path):
    output = RestoreOutput(tmp_path / "restored.db")
    output.open()
    output.discard()
    output.discard()
    assert os.listdir(tmp_path) == []
