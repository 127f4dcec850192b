"""Brake pulses on a real database: short holds of SQLite's write lock that
make the application's writers wait, then let them in."""

from __future__ import annotations

import sqlite3
import threading

import fence_builders
import pytest
from fence_builders import app_can_write, app_connection

from litetool.engine.capture.brake import (
    BACKPRESSURE_OFF_SHARE,
    BACKPRESSURE_ON_SHARE,
    BACKPRESSURE_PULSES,
    BRAKE_PULSE_SECONDS,
    Brake,
)

db, fence = fence_builders.db, fence_builders.fence  # the database of 5 rows, its fence


@pytest.fixture
def app(db):
    with app_connection(db) as conn:
        yield conn


def rows(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


@pytest.mark.parametrize("backpressure", [False, True])
def test_a_pulse_holds_the_applications_writers_off_then_lets_them_in(fence, app, backpressure):
    brake = Brake(fence)
    brake.backpressure = backpressure
    pulsing = threading.Thread(target=brake.pulse)
    pulsing.start()
    turned_away = 0
    while pulsing.is_alive() and not turned_away:
        turned_away += not app_can_write(app)
    # A writer with a busy timeout, as applications have, gets in.
    app.execute("PRAGMA busy_timeout=5000")
    app.execute("INSERT INTO t(data) VALUES (x'01')")
    pulsing.join()
    assert turned_away
    assert brake.braked_seconds >= BRAKE_PULSE_SECONDS
    assert app_can_write(app)
    assert rows(app) == 6


def test_backpressure_pulses_several_times_per_call(fence, app):
    brake = Brake(fence)
    assert brake.update_backpressure(BACKPRESSURE_ON_SHARE, True)
    brake.pulse()
    # Each pulse holds the lock at least BRAKE_PULSE_SECONDS.
    assert brake.braked_seconds >= BACKPRESSURE_PULSES * BRAKE_PULSE_SECONDS - 1e-9
    assert app_can_write(app)


@pytest.mark.parametrize("backpressure", [False, True])
def test_no_pulse_while_the_application_holds_the_write_lock(fence, app, backpressure):
    brake = Brake(fence)
    brake.backpressure = backpressure
    app.execute("BEGIN IMMEDIATE")
    app.execute("INSERT INTO t(data) VALUES (x'01')")
    brake.pulse()
    assert brake.braked_seconds == 0
    app.execute("COMMIT")  # the application's transaction went through untouched
    assert rows(app) == 6
    brake.pulse()  # and the next pulse, with the lock free, holds it
    assert brake.braked_seconds > 0


def test_a_pulse_is_due_only_for_a_reason(fence):
    brake = Brake(fence)
    assert not brake.due(checkpoint_behind=False)
    assert brake.due(checkpoint_behind=True)
    brake.update_backpressure(BACKPRESSURE_ON_SHARE, True)
    assert brake.due(checkpoint_behind=False)


def test_backpressure_goes_on_and_off_with_the_spools_share(fence):
    brake = Brake(fence)
    middle = (BACKPRESSURE_ON_SHARE + BACKPRESSURE_OFF_SHARE) / 2
    steps = [
        ((middle, True), False, False),
        ((BACKPRESSURE_ON_SHARE, True), True, True),
        ((middle, True), False, True),  # still on until well under the cap
        ((BACKPRESSURE_OFF_SHARE / 2, True), True, False),
        ((1.0, True), True, True),
        ((1.0, False), True, False),  # an unreachable replica never brakes
    ]
    for (share, reachable), changed, on in steps:
        assert brake.update_backpressure(share, reachable) == changed, (share, reachable)
        assert brake.backpressure == on
