"""Parsers of what the engine and the kernel give us, against recorded output (no Docker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.adapters.engine.cgroups import (
    CgroupReader,
    parse_blkio_v1,
    parse_io_v2,
    parse_net_dev,
    sample_from_stats,
)
from dockyard.adapters.engine.logs import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    LogDecoder,
    log_params,
)
from dockyard.domain.models import Status
from dockyard.domain.observe.metrics import cpu_percent
from dockyard.domain.observe.streams import parse_instant
from dockyard.domain.ports import ContainerProcess, LogQuery, ResourceSample
from dockyard.errors import ValidationError

CID = "a96c82b01bcfb34f0370df64bf2ff56d539c0b237523f4e84f5a4e6f88ad9f19"

# Recorded from this machine's engine (20.10, cgroup v1): a non-TTY container's logs.
MUX = (
    b"\x01\x00\x00\x00\x00\x00\x00\x05out1\n"
    b"\x02\x00\x00\x00\x00\x00\x00\x05err1\n"
    b"\x01\x00\x00\x00\x00\x00\x00\x05out2\n"
)
# ... and a TTY container's (raw, \r\n from the terminal).
RAW = b"out1\r\nerr1\r\nout2\r\n"

# `GET /containers/{id}/stats?stream=false&one-shot=true`, recorded (trimmed).
STATS = json.loads(
    """{"read": "2026-11-23T15:01:10.901976128Z", "pids_stats": {"current": 2},
    "blkio_stats": {"io_service_bytes_recursive": [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192},
        {"major": 8, "minor": 0, "op": "Total", "value": 12288}]},
    "cpu_stats": {"cpu_usage": {"total_usage": 191481121, "percpu_usage": [131651977, 59829144]},
        "system_cpu_usage": 7949390000000, "online_cpus": 2},
    "memory_stats": {"usage": 466944, "stats": {"total_inactive_file": 4096},
        "limit": 25276514304},
    "networks": {"eth0": {"rx_bytes": 1156, "tx_bytes": 10},
                 "eth1": {"rx_bytes": 4, "tx_bytes": 6}}}"""
)
STOPPED_STATS = {"read": "0001-01-01T00:00:00Z", "cpu_stats": {}, "memory_stats": {}}

# /proc/<pid>/net/dev, recorded (the last eight transmit columns cut).
NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
    "    lo:     100       1    0    0    0     0          0         0      100       1\n"
    "  eth0:     736       8    0    0    0     0          0         0      300       3\n"
)


def decode(chunks: list[bytes], content_type: str | None = None) -> bytes:
    decoder = LogDecoder(content_type)
    return b"".join(decoder.feed(c) for c in chunks) + decoder.finish()


def test_logs_multiplexed_and_raw_are_told_apart() -> None:
    assert decode([MUX]) == b"out1\nerr1\nout2\n"
    assert decode([RAW]) == RAW
    assert decode([MUX], MULTIPLEXED_STREAM) == b"out1\nerr1\nout2\n"
    assert decode([RAW], RAW_STREAM) == RAW
    assert decode([b"ab"]) == b"ab"  # shorter than a header: raw
    assert decode([b""]) == b""


@given(st.lists(st.integers(min_value=0, max_value=len(MUX)), max_size=8))
def test_frames_split_anywhere_come_out_whole(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [MUX[a:b] for a, b in zip([0, *points], [*points, len(MUX)], strict=True)]
    assert decode(chunks) == b"out1\nerr1\nout2\n"


def test_raw_output_streams_without_waiting_for_more() -> None:
    decoder = LogDecoder()
    assert decoder.feed(b"$ ") == b"$ "  # a prompt with no newline is forwarded at once
    assert decoder.feed(b"ls\r\n") == b"ls\r\n"


def test_log_params() -> None:
    query = LogQuery(follow=True, tail=100, since=1700000000.5, timestamps=True, stderr=False)
    assert log_params(query) == {
        "stdout": "1",
        "stderr": "0",
        "follow": "1",
        "timestamps": "1",
        "tail": "100",
        "since": "1700000000.500000000",
    }
    assert log_params(LogQuery())["tail"] == "all"


def test_engine_stats_become_a_sample() -> None:
    sample = sample_from_stats(STATS)
    assert sample is not None
    assert sample.source == "engine"
    assert sample.cpu_ns == 191481121 and sample.online_cpus == 2
    assert sample.memory_used == 466944 - 4096 and sample.memory_limit == 25276514304
    assert (sample.net_rx, sample.net_tx) == (1160, 16)
    assert (sample.blk_read, sample.blk_write) == (4096, 8192)
    assert sample.pids == 2
    assert sample.at == datetime(2026, 11, 23, 15, 1, 10, 901976, tzinfo=UTC)
    assert sample.clock_ns % 1_000_000_000 == 901976128
    assert sample_from_stats(STOPPED_STATS) is None


def test_proc_and_cgroup_text() -> None:
    assert parse_net_dev(NET_DEV) == (736, 300)
    assert parse_blkio_v1("8:0 Read 10\n8:0 Write 20\n8:16 Read 5\n8:0 Total 35\nTotal 35\n") == (
        15,
        20,
    )
    assert parse_blkio_v1("Total 0\n") is None
    assert parse_io_v2("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n") == (
        11,
        22,
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc(tmp_path: Path, pid: int, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    _write(proc / "meminfo", "MemTotal:        1000000 kB\n")
    _write(proc / str(pid) / "net" / "dev", NET_DEV)
    _write(proc / str(pid) / "cgroup", cgroup)
    return proc


def test_cgroup_v1_cgroupfs(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "unified").mkdir(parents=True)
    _write(root / "cpuacct" / "docker" / CID / "cpuacct.usage", "2500000000\n")
    mem = root / "memory" / "docker" / CID
    _write(mem / "memory.usage_in_bytes", "52428800\n")
    _write(mem / "memory.limit_in_bytes", "9223372036854771712\n")  # no limit
    _write(mem / "memory.stat", "cache 4096\ntotal_inactive_file 1048576\n")
    _write(root / "pids" / "docker" / CID / "pids.current", "3\n")
    _write(
        root / "blkio" / "docker" / CID / "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n",
    )
    proc = _proc(tmp_path, 42, f"4:memory:/docker/{CID}\n")
    reader = CgroupReader(root, proc)
    sample = reader.read_now([ContainerProcess(CID, 42, Status.RUNNING, True)])[0]
    assert sample is not None and sample.source == "cgroup"
    assert sample.cpu_ns == 2_500_000_000
    assert sample.memory_used == 52428800 - 1048576
    assert sample.memory_limit == 1000000 * 1024  # no limit: the host's memory
    assert sample.pids == 3
    assert (sample.blk_read, sample.blk_write) == (4096, 512)
    assert (sample.net_rx, sample.net_tx) == (736, 300)
    # The cgroup goes away when the container stops: nothing, not an error.
    for path in sorted(mem.iterdir()):
        path.unlink()
    mem.rmdir()
    assert reader.read_now([ContainerProcess(CID, 42, Status.RUNNING, True)]) == [None]
    # Another container, found only through /proc/<pid>/cgroup (a custom parent).
    other = root / "memory" / "custom" / "x"
    _write(other / "memory.usage_in_bytes", "100\n")
    _write(other / "memory.limit_in_bytes", "8388608\n")
    proc = _proc(tmp_path, 7, "4:memory:/custom/x\n2:cpuacct:/custom/x\n")
    sample = CgroupReader(root, proc).read_now(
        [ContainerProcess("b" * 64, 7, Status.RUNNING, True)]
    )[0]
    assert sample is not None and sample.memory_used == 100 and sample.memory_limit == 8388608
    assert sample.cpu_ns is None  # no cpuacct file there


@pytest.mark.parametrize("rel", [f"docker/{CID}", f"system.slice/docker-{CID}.scope"])
def test_cgroup_v2(tmp_path: Path, rel: str) -> None:
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpu io memory pids\n")
    group = root / rel
    _write(group / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n")
    _write(group / "memory.current", "2097152\n")
    _write(group / "memory.max", "8388608\n")
    _write(group / "memory.stat", "anon 1048576\ninactive_file 1048576\n")
    _write(group / "pids.current", "2\n")
    _write(group / "io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n")
    proc = _proc(tmp_path, 9, f"0::/{rel}\n")
    sample = CgroupReader(root, proc).read_now([ContainerProcess(CID, 9, Status.RUNNING, True)])[0]
    assert sample is not None
    assert sample.cpu_ns == 1_500_000_000
    assert (sample.memory_used, sample.memory_limit) == (1048576, 8388608)
    assert (sample.pids, sample.blk_read, sample.blk_write) == (2, 10, 20)


def test_cpu_percent_like_docker_stats() -> None:
    at = datetime.now(UTC)

    def sample(clock_s: float, cpu_s: float, source: str = "cgroup") -> ResourceSample:
        return ResourceSample(
            source=source, clock_ns=int(clock_s * 1e9), at=at, cpu_ns=int(cpu_s * 1e9)
        )

    assert cpu_percent(sample(10, 5), sample(11, 6)) == 100.0  # one busy core
    assert cpu_percent(sample(10, 5), sample(10.5, 5.25)) == 50.0
    assert cpu_percent(sample(10, 5), sample(11, 7)) == 200.0  # two cores
    assert cpu_percent(None, sample(11, 6)) is None
    assert cpu_percent(sample(10, 5), sample(11, 1)) is None  # restarted: counters reset
    assert cpu_percent(sample(10, 5, "engine"), sample(11, 6)) is None


def test_instants() -> None:
    now = datetime(2024, 1, 20, 15, 30, tzinfo=UTC)
    assert parse_instant("1700000000", "since") == datetime.fromtimestamp(1700000000, UTC)
    assert parse_instant("2024-01-20T15:30:00Z", "since") == now
    assert parse_instant("2024-01-20T16:30:00+01:00", "since") == now
    assert parse_instant("2024-01-20T15:30:00", "since") == now  # no zone: UTC
    assert parse_instant("10m", "since", now=now) == now - timedelta(minutes=10)
    assert parse_instant("1.5h", "since", now=now) == now - timedelta(minutes=90)
    assert parse_instant(None, "since") is None
    with pytest.raises(ValidationError) as err:
        parse_instant("yesterday", "until")
    assert err.value.code == "INVALID_TIME" and err.value.details["field"] == "until"
