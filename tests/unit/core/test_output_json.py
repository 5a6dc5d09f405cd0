"""Both drivers write outputs through the one serializer of streams.core.output_json."""

from pathlib import Path

from streams import replay
from streams.core import output_json
from streams.core.outputs import OutputEvent
from streams.policy_files import load_policy
from streams.worker import publish as worker

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "orders.jsonl"


def test_replay_and_the_worker_use_the_same_serializer() -> None:
    for driver in (replay, worker):  # what each module imported, not what it exports
        assert vars(driver)["serialize"] is output_json.serialize
        assert vars(driver)["raw_text"] is output_json.raw_text


def test_raw_text_keeps_at_most_max_raw_bytes_of_whole_characters() -> None:
    raw = "é".encode() * output_json.MAX_RAW_BYTES  # two bytes each

    text = output_json.raw_text(raw)

    assert len(text.encode("utf-8")) == output_json.MAX_RAW_BYTES
    assert set(text) == {"é"}


def test_raw_text_replaces_invalid_utf8() -> None:
    assert output_json.raw_text(b"ab\xffc") == "ab\ufffdc"


def test_parse_reads_back_every_kind_of_output_serialize_writes() -> None:
    outputs: list[OutputEvent] = []
    replay.replay_lines(EXAMPLES.read_bytes().splitlines(), outputs.append, policy=load_policy())
    assert {output.type for output in outputs} == {
        "deadline.breached",
        "deadline.resolved",
        "recommendation.issued",
        "event.rejected",
    }
    for output in outputs:
        line = output_json.serialize(output)
        assert output_json.parse(line) == output
        assert output_json.parse(line.encode()) == output
