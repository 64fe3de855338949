"""Chat exports: a Slack workspace export zip from ``src/slack/`` and a DiscordChatExporter JSON file
from ``src/discord/``.

Channel source syntax (times are UTC)::

    # key: value                                   channel header (id, created, purpose, topic, ...)
    2024-01-17 09:46:03 ines: text with @ravi      a message; @name becomes a mention
    | more text                                    continues the message above on a new line
    > 2024-01-17 09:50:00 ravi: text               a thread reply to the last top-level message
    2023-06-05 09:00:31 lotte joined               a channel_join
    2024-01-17 03:14:20 bot trainbot: text         a bot message
    + tada: sanne, ravi                            reactions to the message above
    2023-02-20 08:10:31 ines.h [reply]: text       (Discord) a reply to the last top-level message
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .common import SRC, utc, write_bytes, zip_bytes

EXPORTED = utc("2024-06-01 12:00:00")
TEAM = "T01LANTERN"
_LINE = re.compile(r"^(?P<thread>> )?(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:(?P<joined>\S+) joined|"
                   r"(?P<bot>bot )?(?P<user>[^\s:]+)(?P<reply> \[reply\])?: (?P<text>.*))$")
_MENTION = re.compile(r"(?<![\w.])@([a-z][\w.]*[a-z])")


@dataclass
class Message:
    """One parsed chat line."""

    when: datetime
    user: str
    text: str = ""
    join: bool = False
    bot: bool = False
    thread: bool = False  # a reply in the thread of the last top-level message
    reactions: dict[str, list[str]] = field(default_factory=dict)
    replies: list[Message] = field(default_factory=list)
    ts: str = ""  # Slack timestamp, set when the export is built


def read_channel(path: Path) -> tuple[dict[str, str], list[Message]]:
    """Parse one channel file into its header and its top-level messages (replies hang off them)."""
    header: dict[str, str] = {}
    top: list[Message] = []
    last: Message | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            header[key] = value
        elif line.startswith("| ") or line == "|":
            last.text += "\n" + line[2:]
        elif line.startswith("+ "):
            name, _, users = line[2:].partition(": ")
            last.reactions[name] = [u.strip() for u in users.split(",")]
        elif m := _LINE.match(line):
            last = Message(when=utc(m["time"]), user=m["joined"] or m["user"], text=m["text"] or "",
                           join=bool(m["joined"]), bot=bool(m["bot"]), thread=bool(m["thread"] or m["reply"]))
            if last.thread:
                top[-1].replies.append(last)
            else:
                top.append(last)
        elif line.strip():
            raise ValueError(f"{path.name}: cannot parse line {line!r}")
    return header, top


def read_users(path: Path) -> list[list[str]]:
    """Rows of a tab-separated users file (the '#' header line skipped)."""
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]


def _ts(when: datetime, seq: int) -> str:
    return f"{int(when.timestamp())}.{seq:06d}"


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "persona:" + "/".join(parts)))


def slack_zip_bytes(folder: Path = SRC / "slack") -> bytes:
    """A Slack export: channels.json, users.json, integration_logs.json and one folder per channel
    holding a ``YYYY-MM-DD.json`` list of that day's messages (thread replies included, by their own day)."""
    rows = read_users(folder / "users.tsv")
    ids = {row[1]: row[0] for row in rows}
    users, bots = [], {}
    for uid, name, real, title, email in rows:
        if uid.startswith("B"):
            bots[name] = uid
            continue
        first = real.split()[0]
        users.append({"id": uid, "team_id": TEAM, "name": name, "deleted": False, "real_name": real,
                      "tz": "Europe/Amsterdam", "profile": {"title": title, "real_name": real, "display_name": first,
                                                            "first_name": first, "last_name": real.split(None, 1)[1],
                                                            "email": email, "team": TEAM},
                      "is_admin": name == "pieter", "is_bot": False, "updated": 1704067200})

    def profile(name: str) -> dict:
        user = next(u for u in users if u["name"] == name)
        return {"avatar_hash": _uid(name)[:12].replace("-", ""), "real_name": user["real_name"],
                "display_name": user["profile"]["display_name"], "first_name": user["profile"]["first_name"],
                "name": name, "is_restricted": False, "is_ultra_restricted": False, "team": TEAM}

    def mentions(text: str) -> str:
        return _MENTION.sub(lambda m: f"<@{ids[m[1]]}>" if m[1] in ids else m[0], text)

    channels, members = [], []
    seq = 0
    for path in sorted(folder.glob("*.txt")):
        header, top = read_channel(path)
        name = path.stem
        created_at, _, creator = header["created"].rpartition(" ")
        days: dict[str, list[dict]] = {}
        everyone = sorted({m.user for t in top for m in [t, *t.replies] if not m.bot} | {creator})
        channels.append({"id": header["id"], "name": name, "created": int(utc(created_at).timestamp()),
                         "creator": ids[creator], "is_archived": False, "is_general": name == "general",
                         "members": [ids[u] for u in everyone],
                         "topic": {"value": header["topic"], "creator": ids[creator], "last_set": 0},
                         "purpose": {"value": header["purpose"], "creator": ids[creator], "last_set": 0}})
        for parent in top:
            for msg in [parent, *parent.replies]:
                seq += 1
                msg.ts = _ts(msg.when, seq)
            for msg in [parent, *parent.replies]:
                if msg.bot:
                    out = {"type": "message", "subtype": "bot_message", "text": mentions(msg.text), "ts": msg.ts,
                           "username": msg.user, "bot_id": bots[msg.user]}
                elif msg.join:
                    out = {"type": "message", "subtype": "channel_join", "ts": msg.ts, "user": ids[msg.user],
                           "text": f"<@{ids[msg.user]}> has joined the channel"}
                else:
                    out = {"client_msg_id": _uid(name, msg.ts), "type": "message", "text": mentions(msg.text),
                           "user": ids[msg.user], "ts": msg.ts, "team": TEAM, "user_team": TEAM,
                           "source_team": TEAM, "user_profile": profile(msg.user)}
                if msg is parent and parent.replies:
                    out.update(thread_ts=parent.ts, reply_count=len(parent.replies),
                               reply_users_count=len({r.user for r in parent.replies}),
                               latest_reply=parent.replies[-1].ts,
                               reply_users=sorted({ids[r.user] for r in parent.replies}),
                               replies=[{"user": ids[r.user], "ts": r.ts} for r in parent.replies])
                elif msg is not parent:
                    out.update(thread_ts=parent.ts, parent_user_id=ids[parent.user])
                if msg.reactions:
                    out["reactions"] = [{"name": k, "users": [ids[u] for u in v], "count": len(v)}
                                        for k, v in msg.reactions.items()]
                days.setdefault(f"{msg.when:%Y-%m-%d}", []).append(out)
        for day in sorted(days):
            messages = sorted(days[day], key=lambda m: float(m["ts"]))
            members.append((f"{name}/{day}.json", _json(messages)))
    head = [("channels.json", _json(channels)), ("users.json", _json(users)), ("integration_logs.json", _json([]))]
    return zip_bytes(head + sorted(members), EXPORTED)


def _json(value) -> bytes:
    return (json.dumps(value, indent=4, ensure_ascii=False) + "\n").encode("utf-8")


def _snowflake(when: datetime, seq: int) -> str:
    """A Discord-style id: milliseconds since the Discord epoch, shifted, plus a sequence number."""
    return str(((int(when.timestamp() * 1000) - 1420070400000) << 22) | seq)


def discord_json_bytes(folder: Path = SRC / "discord") -> bytes:
    """One channel exported by DiscordChatExporter (JSON format): guild, channel, messages."""
    header, top = read_channel(folder / "practice-log.txt")
    people = {row[0]: row for row in read_users(folder / "users.tsv")}
    start = top[0].when

    def author(name: str) -> dict:
        _, shown, nick, is_bot = people[name]
        return {"id": _snowflake(start, sum(map(ord, name))), "name": shown, "discriminator": "0000",
                "nickname": nick, "color": None, "isBot": is_bot == "yes", "roles": [],
                "avatarUrl": "https://cdn.discordapp.example/embed/avatars/0.png"}

    flat = sorted(((m, p) for p in top for m in [p, *p.replies]), key=lambda mp: mp[0].when)
    ids = {id(m): _snowflake(m.when, i) for i, (m, _) in enumerate(flat)}
    messages = []
    for msg, parent in flat:
        out = {"id": ids[id(msg)], "type": "Reply" if msg is not parent else "Default",
               "timestamp": msg.when.isoformat(timespec="milliseconds"), "timestampEdited": None,
               "callEndedTimestamp": None, "isPinned": False, "content": msg.text, "author": author(msg.user),
               "attachments": [], "embeds": [], "stickers": [], "reactions": [], "mentions": []}
        if msg is not parent:
            out["reference"] = {"messageId": ids[id(parent)], "channelId": "1098765432109876543",
                                "guildId": "1012345678901234567"}
        messages.append(out)
    export = {
        "guild": {"id": "1012345678901234567", "name": header["guild"],
                  "iconUrl": "https://cdn.discordapp.example/icons/1012345678901234567/guild.png"},
        "channel": {"id": "1098765432109876543", "type": "GuildTextChat", "categoryId": "1098765432109876500",
                    "category": header["category"], "name": header["channel"], "topic": header["topic"]},
        "dateRange": {"after": None, "before": None},
        "exportedAt": EXPORTED.isoformat(timespec="milliseconds"),
        "messages": messages,
        "messageCount": len(messages),
    }
    return (json.dumps(export, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_chat(out: Path) -> list[Path]:
    """Write ``chat/slack-export.zip`` and ``chat/discord-export.json`` under ``out``."""
    return [write_bytes(out / "chat" / "slack-export.zip", slack_zip_bytes()),
            write_bytes(out / "chat" / "discord-export.json", discord_json_bytes())]
