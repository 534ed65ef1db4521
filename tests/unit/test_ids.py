import re

from roost import ids


def test_ids_have_opencodes_shape() -> None:
    for value in (ids.new_session_id(), ids.new_message_id(), ids.new_part_id()):
        assert ids.ID_PATTERN.match(value), value
    assert re.match(r"^ses_[0-9a-f]{12}[0-9A-Za-z]{14}$", ids.new_session_id())


def test_message_and_part_ids_sort_oldest_first() -> None:
    made = [ids.new_message_id() for _ in range(500)]
    assert sorted(made) == made
    parts = [ids.new_part_id() for _ in range(500)]
    assert sorted(parts) == parts


def test_session_ids_sort_newest_first() -> None:
    made = [ids.new_session_id() for _ in range(500)]
    assert sorted(made) == list(reversed(made))


def test_ids_are_unique_within_one_millisecond() -> None:
    made = {ids.new_part_id() for _ in range(5000)}
    assert len(made) == 5000
