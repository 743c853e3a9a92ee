"""Source-agnostic records: keys, synthetic ids, links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import Channel, Deletion, Edit, Post, post_link, synthetic_message_id
from tests.helpers import T0


def test_synthetic_id_is_stable_and_negative() -> None:
    first = synthetic_message_id(42, T0, "Ракетная опасность")
    assert first < 0
    assert first == synthetic_message_id(42, T0, "Ракетная опасность")
    assert first == synthetic_message_id(42, T0.astimezone(UTC), "Ракетная опасность")


def test_synthetic_id_depends_on_channel_date_and_text() -> None:
    base = synthetic_message_id(42, T0, "text")
    assert base != synthetic_message_id(43, T0, "text")
    assert base != synthetic_message_id(42, T0 + timedelta(seconds=1), "text")
    assert base != synthetic_message_id(42, T0, "text!")


def test_synthetic_id_accepts_lone_surrogates() -> None:
    assert synthetic_message_id(1, T0, "\ud800") < 0


def test_synthetic_id_fits_sqlite_integer() -> None:
    for text in ("a", "b", "Ракетная опасность", "", "x" * 1000):
        assert -(2**63) <= synthetic_message_id(1, T0, text) < 0


def test_post_link() -> None:
    assert post_link(1902000001, "gladkov_demo", 4101) == "https://t.me/gladkov_demo/4101"
    assert post_link(1902000005, None, 310) == "https://t.me/c/1902000005/310"
    assert post_link(1902000005, None, -77) is None
    assert post_link(1902000005, "name_here", 0) is None


def test_channel_updated_keeps_what_the_newer_lacks() -> None:
    old = Channel(5, "Old title", "old_name")
    assert old.updated(Channel(5, None, None)) == old
    assert old.updated(Channel(5, "New title", None)) == Channel(5, "New title", "old_name")
    assert old.updated(Channel(5, None, "new_name")) == Channel(5, "Old title", "new_name")


def test_keys() -> None:
    ch = Channel(5)
    assert Post(ch, 7, T0).key == (5, 7)
    assert Edit(ch, 7, T0, "x").key == (5, 7)
    assert Post(ch, 7, T0).has_real_id
    assert not Post(ch, -7, T0).has_real_id


def test_deletion_default_date_is_aware() -> None:
    deletion = Deletion(5, (1, 2))
    assert deletion.date.tzinfo is not None
    assert abs(deletion.date - datetime.now(UTC)) < timedelta(days=1)
