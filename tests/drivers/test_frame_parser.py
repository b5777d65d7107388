"""The frame finder under any mix of good frames, garbage, cut-off and corrupted frames, split anywhere."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.drivers.uart._stream import FrameParser
from pibridge.drivers.uart.pms5003 import PlantowerFrames
from pibridge.drivers.uart.sds011 import NovaFrames
from tests.support.chips.pms5003 import NAMES, measurement_frame
from tests.support.chips.sds011 import data_frame

SETTINGS = settings(max_examples=150, deadline=None, derandomize=os.environ.get("CI") == "true")

plantower = st.builds(lambda words: measurement_frame(dict(zip(NAMES, words))),
                      st.lists(st.integers(0, 0xFFFF), min_size=12, max_size=12))
nova = st.builds(lambda a, b: data_frame(a / 10, b / 10), st.integers(0, 9999), st.integers(0, 9999))


def pieces(good, header_byte, tail_byte=None):
    """A good frame, or something that must not come out: garbage without the header's first
    byte (nor the tail byte, where the frame has one: a frame cut just before its tail and then
    garbage starting with that byte is a whole, valid frame again), a frame cut short, or a frame
    with one byte changed after its header."""
    left_out = {header_byte, tail_byte}
    garbage = st.binary(min_size=1, max_size=40).map(lambda b: bytes(x for x in b if x not in left_out) or b"\x00")
    cut = st.tuples(good, st.integers(1, 31)).map(lambda t: ("bad", t[0][: min(t[1], len(t[0]) - 1)]))
    flipped = st.tuples(good, st.integers(2, 40), st.integers(1, 255)).map(
        lambda t: ("bad", t[0][: t[1] % len(t[0])] + bytes([t[0][t[1] % len(t[0])] ^ t[2]]) + t[0][t[1] % len(t[0]) + 1 :])
        if t[1] % len(t[0]) >= 2 else ("bad", t[0][:-1]))
    return st.lists(st.one_of(good.map(lambda f: ("good", f)), garbage.map(lambda g: ("bad", g)), cut, flipped),
                    max_size=12)


def run(parser, stream, cuts):
    frames, position = [], 0
    for cut in sorted(set(c % (len(stream) + 1) for c in cuts)) + [len(stream)]:
        frames += parser.feed(stream[position:cut])
        position = cut
    return frames


@SETTINGS
@given(pieces(plantower, 0x42), st.lists(st.integers(0, 10_000), max_size=8))
def test_plantower_stream_yields_exactly_the_good_frames_in_order(parts, cuts):
    parser = FrameParser(PlantowerFrames())
    stream = b"".join(data for _, data in parts)
    goods = [data for kind, data in parts if kind == "good"]
    assert run(parser, stream, cuts) == goods
    assert parser.counts.frames == len(goods)


@SETTINGS
@given(pieces(nova, 0xAA, tail_byte=0xAB), st.lists(st.integers(0, 10_000), max_size=8))
def test_nova_stream_yields_exactly_the_good_frames_in_order(parts, cuts):
    parser = FrameParser(NovaFrames())
    stream = b"".join(data for _, data in parts)
    assert run(parser, stream, cuts) == [data for kind, data in parts if kind == "good"]
