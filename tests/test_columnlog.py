"""ColumnLog: rows appended one by one and as whole columns read back in order, from any row;
rows dropped are forgotten while row numbers go on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.kernel_state import CALL_DTYPES, Call, new_call_log

Row = tuple[int, float, int, int, int, bool, int]
FIELDS = {name: np.dtype(CALL_DTYPES.get(name, np.int64)) for name in Call._fields}


def rows_from(start: int, count: int) -> list[Row]:
    return [(start + i, start + i + 0.5, (start + i) % 7, 1000 + start + i, (start + i) % 5 - 1,
             (start + i) % 3 == 0, (start + i) % 2) for i in range(count)]


def columns_of(rows: list[Row]) -> dict[str, np.ndarray]:
    return {name: np.array([row[i] for row in rows], dtype=dtype if name != "ready" else bool)
            for i, (name, dtype) in enumerate(FIELDS.items())}


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["append", "extend", "read", "drop", "blocks",
                                                 "read one"]),
                                st.integers(0, 40)), max_size=25))
def test_any_mix_of_appends_extends_reads_and_drops_gives_the_rows_in_order(
        steps: list[tuple[str, int]]) -> None:
    log, model = new_call_log(), list[Row]()
    for kind, n in steps:
        if kind == "append":
            for row in rows_from(len(model), n):
                log.append(row)
                model.append(row)
        elif kind == "drop":  # forget the first rows, as the collector does once it read them
            log.drop(log.dropped + n)
            if log.dropped:
                with pytest.raises(IndexError):
                    log.column("pfn", log.dropped - 1)
        elif kind == "extend":
            new = rows_from(len(model), n)
            log.extend(**columns_of(new))
            model += new
        elif kind == "read one":  # seals one column's tail only: its chunks stop lining up
            log.column("cpu", log.dropped + n % (len(model) - log.dropped + 2))
        elif kind == "blocks":  # chunk by chunk, as the collector reads its calls
            start = log.dropped + n % (len(model) - log.dropped + 2)
            names = list(FIELDS)[n % 3:]
            blocks = list(log.blocks(names, start))
            assert all(len({b.size for b in block}) == 1 for block in blocks)
            for k, name in enumerate(names):
                i = list(FIELDS).index(name)
                joined = [v for block in blocks for v in block[k].tolist()]
                assert joined == [r[i] for r in model[start:]], name
        else:  # a read from some row on, as the timeline does each tick
            start = log.dropped + n % (len(model) - log.dropped + 2)
            for i, name in enumerate(FIELDS):
                got = log.column(name, start)
                assert got.dtype == FIELDS[name]
                assert got.tolist() == [r[i] for r in model[start:]], name  # True == 1
        assert len(log) == len(model)
    for i, name in enumerate(FIELDS):
        assert log.column(name, log.dropped).tolist() == [r[i] for r in model[log.dropped:]]
    assert list(log) == [Call(*r) for r in model[log.dropped:]]


def test_blocks_are_the_extended_arrays_themselves_from_any_row() -> None:
    """Rows logged as whole columns come back per chunk as views of those arrays (the
    collector folds a tick's calls without joining them); a start inside a chunk cuts it."""
    log = new_call_log()
    first, second = columns_of(rows_from(0, 5)), columns_of(rows_from(5, 3))
    log.extend(**first)
    log.extend(**second)
    blocks = list(log.blocks(["pfn", "drain_ms"], 3))
    assert [b[0].tolist() for b in blocks] == [[1003, 1004], [1005, 1006, 1007]]
    assert np.shares_memory(blocks[0][0], first["pfn"])
    assert np.shares_memory(blocks[1][1], second["drain_ms"])
    assert list(log.blocks(["pfn"], 8)) == []
    log.drop(6)
    with pytest.raises(IndexError):
        list(log.blocks(["pfn"], 5))


def test_blocks_of_columns_cut_apart_come_whole() -> None:
    """Rows appended one at a time are sealed into a chunk column by column, when each is
    read: after a read of one column the chunks differ, and blocks gives whole columns."""
    log, model = new_call_log(), rows_from(0, 6)
    for row in model[:4]:
        log.append(row)
    log.column("cpu")  # cpu's tail becomes a chunk of 4; the others keep theirs
    for row in model[4:]:
        log.append(row)
    for names in (["cpu", "pfn"], ["pfn", "cpu"]):
        blocks = list(log.blocks(names, 1))
        assert [[v.tolist() for v in block] for block in blocks] == [
            [[r[list(FIELDS).index(name)] for r in model[1:]] for name in names]]


def test_extend_keeps_the_arrays_and_checks_their_shape() -> None:
    log = new_call_log()
    cols = columns_of(rows_from(0, 4))
    log.extend(**cols)
    assert np.shares_memory(log.column("pfn"), cols["pfn"])  # no copy of an int64 column
    assert log.column("ready").tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="different lengths"):
        log.extend(**{**cols, "cpu": cols["cpu"][:2]})
    with pytest.raises(ValueError, match="expected"):
        log.extend(**{k: v for k, v in cols.items() if k != "page"})
    assert len(log) == 4
