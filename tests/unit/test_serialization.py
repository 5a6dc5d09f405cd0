"""Both drivers write outputs through the one serializer of streams.core.serialization."""

from streams import replay
from streams.core import serialization
from streams.worker import publish as worker


def test_replay_and_the_worker_use_the_same_serializer():
    assert replay.serialize is serialization.serialize
    assert worker.serialize is serialization.serialize
    assert replay.raw_text is serialization.raw_text
    assert worker.raw_text is serialization.raw_text


def test_raw_text_keeps_at_most_max_raw_bytes_of_whole_characters():
    raw = "é".encode() * serialization.MAX_RAW_BYTES  # two bytes each

    text = serialization.raw_text(raw)

    assert len(text.encode("utf-8")) == serialization.MAX_RAW_BYTES
    assert set(text) == {"é"}


def test_raw_text_replaces_invalid_utf8():
    assert serialization.raw_text(b"ab\xffc") == "ab\ufffdc"
