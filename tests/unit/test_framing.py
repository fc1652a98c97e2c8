"""Terminal output framing: UTF-8 never split, base64 only for what is not UTF-8."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from dockyard.domain.terminal.framing import FRAME_BYTES, Utf8Framer


def joined(frames: list[dict[str, str]]) -> bytes:
    return b"".join(
        base64.b64decode(f["data"]) if f["encoding"] == "base64" else f["data"].encode()
        for f in frames
    )


def fed_in_pieces(framer: Utf8Framer, data: bytes, cuts: list[int]) -> list[dict[str, str]]:
    """Every frame of ``data`` read in pieces of the sizes in ``cuts``, then the rest."""
    frames = []
    pos = 0
    for cut in cuts:
        frames += framer.feed(data[pos : pos + cut])
        pos += cut
    return frames + framer.feed(data[pos:]) + framer.flush()


@given(st.text(min_size=1, max_size=400), st.lists(st.integers(1, 50), max_size=20))
def test_text_cut_anywhere_arrives_whole_and_as_utf8(text: str, cuts: list[int]) -> None:
    data = text.encode()
    frames = fed_in_pieces(Utf8Framer("stdout"), data, cuts)
    assert joined(frames) == data
    assert all(f["encoding"] == "utf8" for f in frames)


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_any_bytes_arrive_exactly(data: bytes, cuts: list[int]) -> None:
    frames = fed_in_pieces(Utf8Framer("stderr"), data, cuts)
    assert joined(frames) == data
    for f in frames:
        assert f["type"] == "stderr"
        if f["encoding"] == "base64":
            raw = base64.b64decode(f["data"])
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            raise AssertionError("valid UTF-8 was sent as base64")


def test_split_character_is_held_back_and_binary_is_base64() -> None:
    framer = Utf8Framer("stdout")
    euro = "€".encode()
    assert framer.feed(b"ab" + euro[:2]) == [{"type": "stdout", "data": "ab", "encoding": "utf8"}]
    assert framer.feed(euro[2:] + b"\xff") == [
        {"type": "stdout", "data": "€", "encoding": "utf8"},
        {"type": "stdout", "data": base64.b64encode(b"\xff").decode(), "encoding": "base64"},
    ]


def test_big_chunks_become_bounded_frames_without_breaking_characters() -> None:
    data = ("é" * FRAME_BYTES).encode()  # two bytes each: 2 x FRAME_BYTES
    frames = Utf8Framer("stdout").feed(data)
    assert len(frames) >= 2 and all(f["encoding"] == "utf8" for f in frames)
    assert all(len(f["data"].encode()) <= FRAME_BYTES for f in frames)
    assert joined(frames) == data
