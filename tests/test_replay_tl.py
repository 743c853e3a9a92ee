"""`tgmon replay --tl`: a file of raw `Updates` built with Telethon's own types, end to end.

Text posts, a photo, a video with its attributes, a voice note, a two-photo album, a forward, an
edit and a deletion across three channels, as Telegram sends them: `Updates` carrying the channel
updates with the `Channel` objects in `chats`. The same file must give the right `stats --json`
counts and `export` lines, and alerts exactly for the alarming posts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telethon.tl import types
from typer.testing import CliRunner

from bot.cli import app
from bot.sources.recording import encode

BELGOROD, KURSK, MILITIA = 1902000001, 1902000002, 1902000003
T0 = datetime(2024, 3, 12, 5, 41, tzinfo=UTC)
ENV = {"TGMON_NOTIFIERS": "jsonl", "TGMON_LOG_FORMAT": "json"}


def channel(channel_id: int, title: str, username: str) -> Any:
    return types.Channel(
        id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=T0, access_hash=channel_id * 3,
        username=username, broadcast=True,
    )  # fmt: skip


CHANNELS = {
    BELGOROD: channel(BELGOROD, "Вячеслав Гладков", "vvgladkov"),
    KURSK: channel(KURSK, "Губернатор Курской области", "kursk_governor"),
    MILITIA: channel(MILITIA, "Легион «Свобода России»", "legionfrr"),
}


def message(channel_id: int, message_id: int, text: str, minutes: int, **fields: Any) -> Any:
    return types.Message(
        id=message_id, peer_id=types.PeerChannel(channel_id), date=T0 + timedelta(minutes=minutes), message=text,
        post=True, **fields,
    )  # fmt: skip


def photo(photo_id: int) -> Any:
    return types.MessageMediaPhoto(
        photo=types.Photo(
            id=photo_id, access_hash=1, file_reference=b"r", date=T0, dc_id=2,
            sizes=[types.PhotoSize("m", 320, 240, 21000), types.PhotoSize("y", 1280, 960, 183211)],
        )
    )  # fmt: skip


def document(mime: str, size: int, *attributes: Any) -> Any:
    return types.MessageMediaDocument(
        document=types.Document(
            id=size, access_hash=1, file_reference=b"r", date=T0, mime_type=mime, size=size, dc_id=2,
            attributes=list(attributes),
        )
    )  # fmt: skip


def updates(*inner: Any, channels: tuple[int, ...]) -> Any:
    return types.Updates(updates=list(inner), users=[], chats=[CHANNELS[c] for c in channels], date=T0, seq=0)


def new(msg: Any) -> Any:
    return types.UpdateNewChannelMessage(msg, pts=msg.id, pts_count=1)


def recording(path: Path) -> Path:
    alarm = message(BELGOROD, 4101, "Ракетная опасность! Белгород и Белгородский район. Всем пройти в укрытия!", 0)
    meeting = message(BELGOROD, 4102, "Встреча с жителями Грайворона прошла в администрации", 5, media=photo(11))
    video = message(
        KURSK, 880, "Отбой ракетной опасности в Курске", 20,
        media=document(
            "video/mp4", 5_400_000,
            types.DocumentAttributeVideo(duration=35, w=1280, h=720, supports_streaming=True),
            types.DocumentAttributeFilename("kursk.mp4"),
        ),
    )  # fmt: skip
    voice = message(
        KURSK, 881, "", 22,
        media=document("audio/ogg", 48_000, types.DocumentAttributeAudio(duration=12, voice=True)),
    )  # fmt: skip
    call = "Жители Белгорода и Курска! Немедленно покиньте города, это необходимо для сохранения ваших жизней"
    album = [
        message(MILITIA, 310, call, 30, media=photo(21), grouped_id=777),
        message(MILITIA, 311, "", 30, media=photo(22), grouped_id=777),
    ]
    forward = message(
        MILITIA, 312, "Встреча с жителями Грайворона прошла в администрации", 40,
        fwd_from=types.MessageFwdHeader(date=T0 + timedelta(minutes=5), from_id=types.PeerChannel(BELGOROD),
                                        channel_post=4102),
    )  # fmt: skip
    edited = message(
        BELGOROD, 4102, "Встреча с жителями Грайворона прошла в администрации области", 5,
        media=photo(11), edit_date=T0 + timedelta(minutes=45),
    )  # fmt: skip
    objects = [
        updates(new(alarm), channels=(BELGOROD,)),
        updates(new(meeting), channels=(BELGOROD,)),
        updates(new(video), channels=(KURSK,)),
        updates(new(voice), channels=(KURSK,)),
        updates(*(new(m) for m in album), channels=(MILITIA,)),
        updates(new(forward), channels=(MILITIA, BELGOROD)),
        updates(types.UpdateEditChannelMessage(edited, pts=4200, pts_count=1), channels=(BELGOROD,)),
        updates(types.UpdateDeleteChannelMessages(KURSK, [881], pts=900, pts_count=1), channels=(KURSK,)),
    ]
    path.write_bytes(b"".join(encode(obj) for obj in objects))
    return path


def test_replayed_updates_give_the_archive_and_alerts_of_the_live_source(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    file = recording(tmp_path / "traffic.jsonl")
    result = runner.invoke(app, ["replay", "--tl", str(file), "--data-dir", str(data), "--no-progress"], env=ENV)
    assert result.exit_code == 0, result.output

    stats = json.loads(runner.invoke(app, ["stats", "--json", "--data-dir", str(data)], env=ENV).stdout)
    assert {k: stats[k] for k in ("posts", "channels", "media", "edits", "deletions", "alerts")} == {
        "posts": 7,
        "channels": 3,
        "media": 5,
        "edits": 1,
        "deletions": 1,
        "alerts": 3,
    }
    assert stats["media_by_kind"] == {"photo": 3, "video": 1, "voice": 1}

    alerts = [json.loads(line) for line in (data / "alerts.jsonl").read_text().splitlines()]
    assert sorted((a["channel_id"], a["message_id"], a["category"]) for a in alerts) == [
        (BELGOROD, 4101, "missile"),
        (KURSK, 880, "all_clear"),
        (MILITIA, 310, "evacuation"),
    ]
    assert next(a for a in alerts if a["message_id"] == 4101)["link"] == "https://t.me/vvgladkov/4101"

    exported = runner.invoke(app, ["export", "--format", "jsonl", "--data-dir", str(data)], env=ENV)
    assert exported.exit_code == 0, exported.output
    lines = {(p["channel_id"], p["message_id"]): p for p in map(json.loads, exported.stdout.splitlines())}
    assert len(lines) == 7
    meeting = lines[(BELGOROD, 4102)]
    assert meeting["channel_username"] == "vvgladkov"
    assert meeting["channel_title"] == "Вячеслав Гладков"
    assert meeting["text"].endswith("администрации области")
    assert meeting["versions"] == 2
    assert meeting["edit_date"] == "2024-03-12T06:26:00+00:00"
    assert meeting["media"] == [
        {"kind": "photo", "mime_type": "image/jpeg", "size": 183211, "duration": None, "width": 1280,
         "height": 960, "file_name": None},
    ]  # fmt: skip
    video = lines[(KURSK, 880)]["media"][0]
    assert (video["kind"], video["mime_type"], video["size"], video["duration"]) == (
        "video",
        "video/mp4",
        5_400_000,
        35,
    )
    assert (video["width"], video["height"], video["file_name"]) == (1280, 720, "kursk.mp4")
    voice = lines[(KURSK, 881)]
    assert voice["deleted"] is True
    assert (voice["media"][0]["kind"], voice["media"][0]["duration"]) == ("voice", 12)
    first, second = lines[(MILITIA, 310)], lines[(MILITIA, 311)]
    assert first["grouped_id"] == second["grouped_id"] == 777
    assert [m["kind"] for m in first["media"] + second["media"]] == ["photo", "photo"]
    forward = lines[(MILITIA, 312)]["forward_from"]
    assert forward["channel_id"] == BELGOROD
    assert forward["message_id"] == 4102
    assert forward["name"] == "Вячеслав Гладков"  # from the Channel object that came with the update
    for line in lines.values():
        assert line["deleted"] is (line["message_id"] == 881)
        assert line["versions"] == (2 if line["message_id"] == 4102 else 1)

    again = runner.invoke(app, ["replay", "--tl", str(file), "--data-dir", str(data), "--no-progress"], env=ENV)
    assert again.exit_code == 0, again.output
    restats = json.loads(runner.invoke(app, ["stats", "--json", "--data-dir", str(data)], env=ENV).stdout)
    assert (restats["posts"], restats["edits"], restats["alerts"]) == (7, 1, 3)


def test_only_configured_keeps_the_listed_channels(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.toml").write_text('[[channel]]\nusername = "kursk_governor"\nid = 1902000002\n')
    data = tmp_path / "data"
    file = recording(tmp_path / "traffic.jsonl")
    args = ["replay", str(file), "--only-configured", "--data-dir", str(data), "--config-dir", str(config)]
    result = CliRunner().invoke(app, [*args, "--no-progress"], env=ENV)  # recognised without --tl
    assert result.exit_code == 0, result.output
    stats = json.loads(CliRunner().invoke(app, ["stats", "--json", "--data-dir", str(data)], env=ENV).stdout)
    assert (stats["posts"], stats["channels"], stats["alerts"], stats["deletions"]) == (2, 1, 1, 1)


def test_a_line_that_is_not_a_tl_object_is_a_bad_record_not_a_crash(tmp_path: Path) -> None:
    file = recording(tmp_path / "traffic.jsonl")
    with file.open("ab") as handle:
        handle.write(b'{"received_at": "2024-03-12T06:00:00+00:00", "tl": "bm90IGEgVEwgb2JqZWN0"}\n')
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["replay", "--tl", str(file), "--data-dir", str(data), "--no-progress"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "1 bad records" in result.stderr
    assert "replay.bad_record" in result.stderr
