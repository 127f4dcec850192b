"""The reusable scratch buffer (grows to the largest batch in 256 KiB steps,
reuses its memory, lets go only past a limit; views handed out stay valid)
and the memory settings (glibc's allocator tuned where it can be, a no-op
where it cannot; bulk threads made nicer, the process left as it was)."""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import platform
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litetool.engine.runtime import memory
from litetool.engine.runtime.buffers import ReusableBuffer

GRANULE = 256 << 10


def test_a_view_is_the_size_asked_for_and_writable():
    buffer = ReusableBuffer()
    assert buffer.capacity == 0
    view = buffer.view(1000)
    assert len(view) == 1000 and not view.readonly
    view[:] = b"\xab" * 1000
    assert bytes(buffer.view(1000)) == b"\xab" * 1000


def test_a_buffer_large_enough_is_reused_not_reallocated():
    buffer = ReusableBuffer(1 << 20)
    big = buffer.view(1 << 20)
    small = buffer.view(10)
    small[:] = b"0123456789"
    assert bytes(big[:10]) == b"0123456789"  # the same memory
    assert buffer.capacity == 1 << 20


def test_growing_rounds_up_to_the_granule_and_keeps_older_views_valid():
    buffer = ReusableBuffer(7)
    old = buffer.view(7)
    old[:] = b"kept it"
    new = buffer.view(GRANULE + 1)
    assert buffer.capacity == 2 * GRANULE
    assert len(new) == GRANULE + 1
    new[:7] = b"changed"
    assert bytes(old) == b"kept it"  # the old view still reads its own memory
    assert len(buffer.view(2 * GRANULE)) == 2 * GRANULE and buffer.capacity == 2 * GRANULE


def test_shrink_lets_go_only_of_a_buffer_past_the_limit():
    buffer = ReusableBuffer()
    buffer.view(3 * GRANULE)
    buffer.shrink(4 * GRANULE)
    assert buffer.capacity == 3 * GRANULE
    held = buffer.view(3 * GRANULE)
    held[:4] = b"held"
    buffer.shrink(GRANULE)
    assert buffer.capacity == GRANULE
    assert bytes(held[:4]) == b"held"  # a view taken before stays usable
    assert len(buffer.view(GRANULE)) == GRANULE and buffer.capacity == GRANULE


@given(
    initial=st.integers(0, 3 * GRANULE),
    sizes=st.lists(st.integers(0, 3 * GRANULE), max_size=12),
)
def test_capacity_follows_the_largest_view_in_granule_steps(initial, sizes):
    buffer = ReusableBuffer(initial)
    expected = initial
    for size in sizes:
        view = buffer.view(size)
        assert len(view) == size
        if size > expected:
            expected = -(-size // GRANULE) * GRANULE
        assert buffer.capacity == expected


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_allocator_is_tuned_where_glibc_is_there():
    assert memory.tune_allocator() is True


def test_the_allocator_settings_are_a_no_op_without_a_c_library(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert memory.tune_allocator() is False


def test_the_allocator_settings_are_a_no_op_when_the_c_library_cannot_be_loaded(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libc-not-here.so.0")
    assert memory.tune_allocator() is False


def test_a_bulk_thread_is_made_nicer_and_the_process_is_not():
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    def bulk() -> None:
        tid = threading.get_native_id()
        # Room to grow where allowed (a process already at 19 leaves none).
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, tid, 10)
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        memory.lower_thread_priority()
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    thread = threading.Thread(target=bulk)
    thread.start()
    thread.join()
    assert seen["after"] == min(19, seen["before"] + memory.BULK_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main
