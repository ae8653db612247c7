"""The event model helpers."""

from __future__ import annotations

from collectors.event import get_field, normalize_timestamp, set_field, stable_id, stable_id_factory


def test_id_factory_gives_the_same_ids_as_stable_id() -> None:
    make = stable_id_factory("file", "/var/log/auth.log")
    assert make(1234) == stable_id("file", "/var/log/auth.log", 1234)


def test_stable_id_separates_its_parts() -> None:
    assert stable_id("ab", "c") != stable_id("a", "bc")


def test_dotted_paths_read_nested_and_flat_keys() -> None:
    doc = {"source": {"ip": "10.0.0.1"}, "winlog.event_id": "4625"}
    assert get_field(doc, "source.ip") == "10.0.0.1"
    assert get_field(doc, "winlog.event_id") == "4625"
    assert get_field(doc, "source.port") is None


def test_set_field_creates_intermediate_objects() -> None:
    doc: dict = {}
    set_field(doc, "user.target.name", "bob")
    assert doc == {"user": {"target": {"name": "bob"}}}


def test_timestamps_normalise_to_utc_milliseconds() -> None:
    assert normalize_timestamp("2018-07-05T15:01:09.820360-0400") == "2018-07-05T19:01:09.820Z"
    assert normalize_timestamp("2020-01-01T00:00:00.123456789Z") == "2020-01-01T00:00:00.123Z"
