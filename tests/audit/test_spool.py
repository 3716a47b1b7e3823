"""The spool survives crashes: a torn last record is cut off, other damage is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.spool import SPOOL_NAME, Spool
from gateway.errors import ConfigError


def batch(n: int) -> dict[str, object]:
    return {"events": [{"seq": n, "time": datetime(2026, 1, 1, tzinfo=UTC)}], "checkpoints": []}


def write_three(directory: Path) -> None:
    spool = Spool(directory)
    for n in range(3):
        spool.append(batch(n))
    spool.close()


def seqs(spool: Spool) -> list[int]:
    return [b["events"][0]["seq"] for b in spool.batches()]


def test_batches_come_back_in_order_with_their_times(tmp_path: Path) -> None:
    write_three(tmp_path)
    spool = Spool(tmp_path)
    assert spool.pending and seqs(spool) == [0, 1, 2]
    assert next(iter(spool.batches()))["events"][0]["time"] == datetime(2026, 1, 1, tzinfo=UTC)
    spool.clear()
    assert not spool.pending and seqs(spool) == []
    spool.close()


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_a_torn_last_record_is_cut_off_and_appends_continue(tmp_path: Path, cut: int) -> None:
    write_three(tmp_path)
    path = tmp_path / SPOOL_NAME
    path.write_bytes(path.read_bytes()[:-cut])  # the crash hit during the third append
    spool = Spool(tmp_path)
    assert seqs(spool) == [0, 1]
    spool.append(batch(3))
    assert seqs(spool) == [0, 1, 3]
    spool.close()


def test_zero_filled_tail_after_a_crash_is_cut_off(tmp_path: Path) -> None:
    write_three(tmp_path)
    with (tmp_path / SPOOL_NAME).open("ab") as f:
        f.write(b"\x00" * 4096)
    spool = Spool(tmp_path)
    assert seqs(spool) == [0, 1, 2]
    spool.close()


def test_damage_before_the_end_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    write_three(tmp_path)
    path = tmp_path / SPOOL_NAME
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01  # a flipped bit inside the first record
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="offset 0"):
        Spool(tmp_path)
    assert path.read_bytes() == bytes(data)
