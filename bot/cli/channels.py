"""`tgmon channels list|add|remove|resolve`: the followed channels, in channels.toml and on Telegram."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import tomlkit
import typer
from rich.table import Table

from bot.cli.common import ConfigDir, DataDir, EnvFile, JsonOpt, app, guard, opened_store, out, run_async, settings_from
from bot.errors import UserError
from bot.settings import ChannelConfig, load_channels, parse_username

channels_app = typer.Typer(
    help="The channels tgmon follows (config/channels.toml), and what Telegram says of them.",
    no_args_is_help=True,
)

app.add_typer(channels_app, name="channels")


def _channel_ref(ref: str) -> dict[str, Any]:
    """A numeric id, @username or t.me link, as channels.toml keys; a bad one is a UserError."""
    text = ref.strip().removeprefix("-100") if ref.strip().startswith("-100") else ref.strip()
    if text.isdigit():
        return {"id": int(text)}
    try:
        return {"username": parse_username(text)}
    except ValueError as exc:
        raise UserError(f"{ref}: {exc}, or a numeric channel id") from None


def _matches(config: ChannelConfig, ref: dict[str, Any]) -> bool:
    if "id" in ref:
        return bool(config.id == ref["id"])
    return config.username is not None and config.username.lower() == str(ref["username"]).lower()


def _edit_channels(path: Path, edit: Callable[[tomlkit.TOMLDocument], None]) -> None:
    """Change channels.toml through tomlkit (the operator's comments stay), validate, then replace it."""
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    edit(document)
    text = tomlkit.dumps(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(text, encoding="utf-8")
    try:
        load_channels(scratch)
    except UserError:
        scratch.unlink()
        raise
    scratch.replace(path)


@channels_app.command("list")
def channels_list(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Configured channels with what the archive knows: id, title, availability, posts, latest post."""

    async def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        known: list[dict[str, Any]] = []
        if settings.db_path.exists():
            async with opened_store(settings.data_dir, create=False) as store:
                known = await store.channel_overview()
        by_id = {k["id"]: k for k in known}
        by_name = {str(k["username"]).lower(): k for k in known if k["username"]}
        rows = []
        for config in settings.channels.items:
            record = by_id.get(config.id or 0) or by_name.get((config.username or "").lower()) or {}
            status = "not resolved yet"
            if record:
                status = "ok" if record["available"] else f"unavailable: {record['unavailable_reason']}"
            rows.append(
                {
                    "channel": f"@{config.username}" if config.username else str(config.id),
                    "id": record.get("id", config.id),
                    "title": record.get("title") or config.title,
                    "tags": list(config.tags),
                    "join": config.join,
                    "download_media": config.download_media,
                    "status": status,
                    "posts": record.get("posts", 0),
                    "last_post": record.get("last_post"),
                }
            )
        if as_json:
            out.print_json(data=rows)
            return
        table = Table(title=f"{len(rows)} channels in {settings.channels_path}", title_justify="left")
        for column in ("channel", "id", "title", "tags", "status", "posts", "last post"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["channel"], str(row["id"] or "?"), row["title"] or "", ", ".join(row["tags"]),
                row["status"], str(row["posts"]), row["last_post"] or "",
            )  # fmt: skip
        out.print(table)

    run_async(body)


@channels_app.command("add", context_settings={"ignore_unknown_options": True})  # -100… ids as Telegram tools print
def channels_add(
    ref: Annotated[str, typer.Argument(help="@username, t.me link or numeric channel id.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag for rules to scope to (repeatable).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Display name until Telegram reports one.")] = None,
    join: Annotated[bool, typer.Option("--join/--no-join", help="Join it, for live updates.")] = True,
    download_media: Annotated[
        bool, typer.Option("--download-media", help="Download its media files (up to TG_MEDIA_MAX_MB).")
    ] = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Add a channel to channels.toml (the running service picks it up on its next start)."""

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        key = _channel_ref(ref)
        for config in settings.channels.items:
            if _matches(config, key):
                raise UserError(f"{settings.channels_path}: {ref} is already listed")
        entry = tomlkit.table()
        for name, value in key.items():
            entry[name] = value
        if title:
            entry["title"] = title
        if tag:
            entry["tags"] = list(dict.fromkeys(tag))
        if not join:
            entry["join"] = False
        if download_media:
            entry["download_media"] = True

        def edit(document: tomlkit.TOMLDocument) -> None:
            channels = document.get("channel")
            if channels is None:
                channels = tomlkit.aot()
                document["channel"] = channels
            channels.append(entry)

        _edit_channels(settings.channels_path, edit)
        out.print(f"Added {ref} to {settings.channels_path}; restart the service (tgmon run) to follow it.")

    guard(body)


@channels_app.command("remove", context_settings={"ignore_unknown_options": True})
def channels_remove(
    ref: Annotated[str, typer.Argument(help="@username, t.me link or numeric id, as listed.")],
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Stop following a channel: it leaves channels.toml; its archived posts stay."""

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        key = _channel_ref(ref)
        if not any(_matches(c, key) for c in settings.channels.items):
            listed = ", ".join(f"@{c.username}" if c.username else str(c.id) for c in settings.channels.items)
            raise UserError(f"{settings.channels_path}: {ref} is not listed (listed: {listed or 'none'})")

        def edit(document: tomlkit.TOMLDocument) -> None:
            channels = document["channel"]
            for index, entry in enumerate(list(channels)):
                if _matches(ChannelConfig.model_validate(dict(entry)), key):
                    del channels[index]
                    break
            if not len(channels):
                del document["channel"]

        _edit_channels(settings.channels_path, edit)
        out.print(f"Removed {ref} from {settings.channels_path}; its archived posts stay in the database.")

    guard(body)


@channels_app.command("resolve")
def channels_resolve(
    join: Annotated[bool, typer.Option("--join/--no-join", help="Also join the channels set to join.")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Ask Telegram for every configured channel once; keep id and access hash; report the unreachable."""

    async def body() -> None:
        from bot.sources.channels import ChannelRegistry  # Telethon: loaded by the command that needs it
        from bot.sources.session import connect_authorized, exclusive

        settings = settings_from(data_dir, config_dir, env_file)
        with exclusive(settings):
            client = await connect_authorized(settings)
            try:
                async with opened_store(settings.data_dir, create=True) as store:
                    registry = ChannelRegistry(client, settings.channels, await store.channel_records(), store.write)
                    followed = await registry.resolve_all(join=join)
            finally:
                await client.disconnect()
        rows: list[dict[str, Any]] = [
            {"channel": f.label, "id": f.id, "title": f.channel.title, "joined": f.joined, "status": "ok"}
            for f in followed.values()
        ] + [
            {"channel": label, "id": None, "title": None, "joined": False, "status": reason}
            for label, reason in registry.unavailable.items()
        ]
        if as_json:
            out.print_json(data=rows)
        else:
            table = Table(title="channels as Telegram sees them", title_justify="left")
            for column in ("channel", "id", "title", "joined", "status"):
                table.add_column(column)
            for row in rows:
                table.add_row(
                    row["channel"], str(row["id"] or ""), row["title"] or "", "yes" if row["joined"] else "no",
                    row["status"],
                )  # fmt: skip
            out.print(table)
        if registry.unavailable:
            raise typer.Exit(1)

    run_async(body)
