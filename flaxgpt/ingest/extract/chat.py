"""Chat: Slack workspace exports and DiscordChatExporter JSON -> conversation windows.

A single chat message is too short to learn from or to filter, so messages are grouped into
conversation windows: a Slack thread is one window, and the rest of a channel is cut wherever
nobody wrote for ``WINDOW_GAP_S``. A window is one "chat" Document of ``Name: text`` lines; by
default only windows where the owner wrote are kept. ``metadata["people"]`` lists the names of
everyone else in the window (authors and mentioned users, every spelling known) for the privacy
scrubber. A malformed day file or export file is reported and skipped; the source is skipped only
when it yields no window at all.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flaxgpt.ingest.extract.base import Context, Document, Skip, SourceFile, SourceTree

WINDOW_GAP_S = 30 * 60  # a silence this long starts a new conversation
MAX_WINDOW_MESSAGES = 200  # longer runs are cut so one document stays a readable size
_MAX_TS = 253402300799  # 9999-12-31: later (or NaN) timestamps are corrupt


@dataclass
class Message:
    """One chat message, already rendered to plain text."""

    ts: float  # seconds since the epoch
    id: str
    author: str
    text: str
    owner: bool
    thread: str | None = None  # messages with the same thread key form their own window
    people: tuple[str, ...] = ()  # every name of the author (when not the owner) and of users mentioned


def conversation_windows(messages: Iterable[Message], gap_s: float = WINDOW_GAP_S,
                         max_messages: int = MAX_WINDOW_MESSAGES) -> list[list[Message]]:
    """Messages grouped into windows: each thread is one window, the others are split where the time
    between consecutive messages exceeds ``gap_s``; windows hold at most ``max_messages`` and are
    returned in order of their first message."""
    flow: list[Message] = []
    threads: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        (threads[m.thread] if m.thread else flow).append(m)
    windows: list[list[Message]] = []
    current: list[Message] = []
    for m in sorted(flow, key=lambda m: m.ts):
        if current and (m.ts - current[-1].ts > gap_s or len(current) >= max_messages):
            windows.append(current)
            current = []
        current.append(m)
    if current:
        windows.append(current)
    for thread in threads.values():
        thread.sort(key=lambda m: m.ts)
        windows.extend(thread[i:i + max_messages] for i in range(0, len(thread), max_messages))
    windows.sort(key=lambda w: w[0].ts)
    return windows


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def window_document(window: list[Message], path: str, metadata: dict) -> Document:
    """A window as one "chat" Document of ``Name: text`` lines, with people, start, end and count metadata."""
    people: list[str] = []
    for m in window:
        people.extend(p for p in m.people if p not in people)
    text = "\n".join(f"{m.author}: {m.text}" for m in window)
    meta = {**metadata, "people": people, "start": _iso(window[0].ts), "end": _iso(window[-1].ts),
            "messages": len(window)}
    return Document(text=text, kind="chat", path=path, metadata=meta)


def _dict(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _list(x: object) -> list:
    return x if isinstance(x, list) else []


def _str(x: object) -> str:
    return x if isinstance(x, str) else "" if x is None else str(x)


def _load_json(file: SourceFile, ctx: Context) -> object:
    try:
        return json.loads(file.read_bytes(ctx.max_file_bytes))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Skip(f"malformed JSON: {e}") from None
    except (OSError, EOFError) as e:  # a corrupt archive member
        raise Skip(f"unreadable: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- Slack

_SLACK_DAY = re.compile(r"^(.+/)?([^/]+)/(\d{4}-\d{2}-\d{2})\.json$")
_SLACK_KEEP_SUBTYPES = frozenset({None, "thread_broadcast", "reply_broadcast", "me_message", "file_share"})
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


@dataclass
class _SlackUser:
    name: str  # the name shown in the window
    names: tuple[str, ...]  # every spelling, for the scrubber
    owner: bool
    bot: bool = False


def _slack_user(raw: dict, ctx: Context) -> _SlackUser:
    profile = _dict(raw.get("profile"))
    uid = _str(raw.get("id"))
    real = _str(raw.get("real_name") or profile.get("real_name"))
    display = _str(profile.get("display_name") or raw.get("display_name"))
    names = tuple(dict.fromkeys(n for n in (real, display, _str(profile.get("real_name")), _str(raw.get("name")))
                                if n))
    owner = (ctx.owner.is_owner(handle=uid) or ctx.owner.is_owner(email=_str(profile.get("email")))
             or any(ctx.owner.is_owner(name=n, handle=n) for n in names))
    return _SlackUser(name=(names or (uid,))[0], names=names, owner=owner,
                      bot=bool(raw.get("is_bot")) or uid == "USLACKBOT")


class _SlackRenderer:
    """Turns Slack mrkdwn (``<@U1|name>``, ``<#C1|chan>``, ``<url|title>``, ``&amp;``) into plain text."""

    def __init__(self, users: dict[str, _SlackUser], channels: dict[str, str]) -> None:
        self.users = users
        self.channels = channels

    def render(self, text: str) -> tuple[str, list[str]]:
        """(plain text, names of the users it mentions)."""
        mentioned: list[str] = []

        def link(m: re.Match) -> str:
            target, label = m.group(1), m.group(2)
            if target.startswith("@"):
                user = self.users.get(target[1:])
                name = user.name if user else (label or "someone").lstrip("@")
                if user and not user.owner:
                    mentioned.extend(user.names)
                elif not user and label:
                    mentioned.append(name)
                return "@" + name
            if target.startswith("#"):
                return "#" + (label or self.channels.get(target[1:], "channel"))
            if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^...|fallback>
                return label or "@" + target[1:].split("^")[0]
            url = target.removeprefix("mailto:")
            return f"{label} ({url})" if label and label not in url else url

        return html.unescape(_SLACK_LINK.sub(link, text)), mentioned


def _slack_root(tree: SourceTree) -> str:
    """The folder prefix of the export inside the tree ('' or 'wrapper/'): where users/channels.json live,
    else the shallowest parent of the channel folders."""
    for name in ("users.json", "channels.json"):
        hits = sorted((f.rel for f in tree.files if f.name == name), key=lambda r: r.count("/"))
        if hits:
            return hits[0][: -len(name)]
    prefixes = [(m.group(1) or "") for f in tree.files if (m := _SLACK_DAY.match(f.rel))]
    return min(prefixes, key=lambda p: p.count("/"), default="")


def _slack_list(tree: SourceTree, rel: str, ctx: Context) -> list[dict]:
    file = tree.get(rel)
    if file is None:
        return []
    try:
        data = _load_json(file, ctx)
    except Skip as e:
        ctx.skip(rel, str(e))
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _slack_messages(raw: list, users: dict[str, _SlackUser], renderer: _SlackRenderer,
                    ctx: Context) -> Iterator[Message]:
    for m in raw:
        if not isinstance(m, dict) or m.get("type", "message") != "message":
            continue
        if (_str(m.get("subtype")) or None) not in _SLACK_KEEP_SUBTYPES or m.get("bot_id") or not m.get("text"):
            continue
        uid = _str(m.get("user"))
        user = users.get(uid)
        if user is None:  # not in users.json (a guest from another workspace): its own profile copy
            profile = _dict(m.get("user_profile"))
            user = _slack_user({**profile, "id": uid, "profile": profile}, ctx)
            users[uid] = user
        if user.bot:
            continue
        try:
            ts = float(m["ts"])
        except (KeyError, TypeError, ValueError):
            continue
        if not 0 <= ts < _MAX_TS:
            continue
        text, mentioned = renderer.render(str(m["text"]))
        if not text.strip():
            continue
        thread = m.get("thread_ts")
        people = tuple(mentioned) if user.owner else user.names + tuple(mentioned)
        yield Message(ts=ts, id=str(m["ts"]), author=user.name, text=text.strip(), owner=user.owner,
                      thread=str(thread) if thread else None, people=people)


def extract_slack(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """A Slack export (one folder per channel or DM holding ``YYYY-MM-DD.json`` day files, with
    users.json and channels.json, possibly inside one wrapper folder) -> one "chat" Document per
    conversation window (only windows where the owner wrote when ``ctx.owner_only``)."""
    root = _slack_root(tree)
    users = {_str(u.get("id")): _slack_user(u, ctx) for u in _slack_list(tree, root + "users.json", ctx)
             if u.get("id")}
    channels = {_str(c.get("id")): _str(c.get("name")) for name in ("channels.json", "groups.json", "mpims.json")
                for c in _slack_list(tree, root + name, ctx) if c.get("id") and c.get("name")}
    renderer = _SlackRenderer(users, channels)
    days: dict[str, list[SourceFile]] = defaultdict(list)
    for f in tree.files:
        m = _SLACK_DAY.match(f.rel)
        if m and (m.group(1) or "") == root:
            days[m.group(2)].append(f)
    if not days:
        raise Skip("not a Slack export: no <channel>/YYYY-MM-DD.json day files")
    kept = windows_seen = 0
    for folder in sorted(days):
        messages: list[Message] = []
        for day in days[folder]:
            try:
                raw = _load_json(day, ctx)
            except Skip as e:
                ctx.skip(day.rel, str(e))
                continue
            if not isinstance(raw, list):
                ctx.skip(day.rel, "malformed day file: not a list of messages")
                continue
            messages.extend(_slack_messages(raw, users, renderer, ctx))
        # A thread parent has thread_ts == ts; it joins its thread window only if the thread has replies.
        replied = {m.thread for m in messages if m.thread and m.thread != m.id}
        for m in messages:
            if m.thread not in replied:
                m.thread = None
        for window in conversation_windows(messages):
            windows_seen += 1
            if ctx.owner_only and not any(m.owner for m in window):
                continue
            kept += 1
            yield window_document(window, f"{root}{folder}#{window[0].id}", {"source": "slack", "channel": folder})
    if kept == 0:
        if windows_seen and ctx.owner_only:
            raise Skip(f"the owner wrote in none of {windows_seen} conversation windows (check the owner's "
                       "Slack handles or names)")
        raise Skip("no messages with text in the Slack export")


# ---------------------------------------------------------------- Discord

_DISCORD_KEEP_TYPES = frozenset({"Default", "Reply", "0", "19"})
_DISCORD_MENTION = re.compile(r"<(@!?|#|@&)(\d+)>")
_DISCORD_EMOJI = re.compile(r"<a?(:\w+:)\d+>")


def _discord_names(author: dict) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in (_str(author.get("nickname")), _str(author.get("name"))) if n))


def _discord_is_owner(author: dict, ctx: Context) -> bool:
    names = _discord_names(author)
    return (ctx.owner.is_owner(handle=str(author.get("id") or ""))
            or any(ctx.owner.is_owner(name=n, handle=n) for n in names)
            or ctx.owner.is_owner(handle=f"{author.get('name')}#{author.get('discriminator')}"))


def _discord_messages(data: dict, ctx: Context) -> Iterator[Message]:
    for m in data["messages"]:
        if not isinstance(m, dict) or str(m.get("type", "Default")) not in _DISCORD_KEEP_TYPES:
            continue
        author = _dict(m.get("author"))
        content = m.get("content")
        if author.get("isBot") or not isinstance(content, str) or not content.strip():
            continue
        try:
            ts = datetime.fromisoformat(str(m["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError, TypeError, OverflowError):
            continue
        if not 0 <= ts < _MAX_TS:
            continue
        mentions = {str(u.get("id")): u for u in _list(m.get("mentions")) if isinstance(u, dict)}
        mentioned: list[str] = []

        def mention(match: re.Match, mentions: dict = mentions) -> str:
            user = mentions.get(match.group(2))
            if match.group(1) in ("@", "@!") and user:
                return "@" + (_discord_names(user) or ("someone",))[0]
            return {"#": "#channel", "@&": "@role"}.get(match.group(1), "@someone")

        # DiscordChatExporter usually renders mentions as "@name" already; raw <@id> forms are resolved here.
        text = _DISCORD_EMOJI.sub(r"\1", _DISCORD_MENTION.sub(mention, content)).strip()
        owner = _discord_is_owner(author, ctx)
        for u in mentions.values():
            if not _discord_is_owner(u, ctx):
                mentioned.extend(n for n in _discord_names(u) if n not in mentioned)
        names = _discord_names(author) or (str(author.get("id") or "unknown"),)
        people = tuple(mentioned) if owner else names + tuple(mentioned)
        yield Message(ts=ts, id=str(m.get("id") or ts), author=names[0], text=text, owner=owner, people=people)


def extract_discord(tree: SourceTree, ctx: Context) -> Iterator[Document]:
    """DiscordChatExporter JSON files (root ``guild``, ``channel``, ``messages``) in ``tree`` -> one "chat"
    Document per conversation window (only windows where the owner wrote when ``ctx.owner_only``)."""
    kept = windows_seen = exports = 0
    for file in tree.files:
        if file.suffix != ".json":
            continue
        try:
            data = _load_json(file, ctx)
        except Skip as e:
            ctx.skip(file.rel, str(e))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            ctx.skip(file.rel, "not a DiscordChatExporter JSON export (no messages list)")
            continue
        exports += 1
        guild = _str(_dict(data.get("guild")).get("name"))
        channel = _str(_dict(data.get("channel")).get("name"))
        for window in conversation_windows(_discord_messages(data, ctx)):
            windows_seen += 1
            if ctx.owner_only and not any(m.owner for m in window):
                continue
            kept += 1
            yield window_document(window, f"{file.rel}#{window[0].id}",
                                  {"source": "discord", "guild": guild, "channel": channel})
    if kept == 0:
        if not exports:
            raise Skip("no DiscordChatExporter JSON file in the source")
        if windows_seen and ctx.owner_only:
            raise Skip(f"the owner wrote in none of {windows_seen} conversation windows (check the owner's "
                       "Discord names)")
        raise Skip("no messages with text in the Discord export")
