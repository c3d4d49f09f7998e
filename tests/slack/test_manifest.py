"""The app manifest an admin pastes must match what the code listens to and calls."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml

from bot.channels.slack import channel
from bot.channels.slack.channel import MESSAGE_EVENTS, SHORTCUT_CALLBACK, THREAD_CHANNEL_TYPES

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"
# The history scope each `message.*` event needs.
HISTORY_SCOPES = {
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
}
# The Web API methods the adapter calls, and the scope each one needs.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "conversations_open": "im:write",
    "users_info": "users:read",
    "files_upload_v2": "files:write",
}


def _manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def test_manifest_matches_the_listeners() -> None:
    manifest = _manifest()
    features, settings = manifest["features"], manifest["settings"]
    assert [s["callback_id"] for s in features["shortcuts"]] == [SHORTCUT_CALLBACK]
    assert features["shortcuts"][0]["type"] == "message"
    assert [c["command"] for c in features["slash_commands"]] == ["/fournil"]
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        *MESSAGE_EVENTS.values(),
    }
    assert {MESSAGE_EVENTS[kind] for kind in THREAD_CHANNEL_TYPES} == {"message.channels", "message.groups"}
    assert settings["interactivity"]["is_enabled"] and settings["socket_mode_enabled"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "app_mentions:read",
        "commands",
        *(HISTORY_SCOPES[event] for event in MESSAGE_EVENTS.values()),
        *METHOD_SCOPES.values(),
    }
    info = manifest["display_information"]
    assert len(info["description"]) <= 140
    assert 174 <= len(info["long_description"]) <= 4000


def test_the_scopes_cover_every_api_call_of_the_adapter() -> None:
    source = inspect.getsource(channel)
    called = {method for method in METHOD_SCOPES if f".{method}(" in source}
    assert called == set(METHOD_SCOPES)  # the table is the adapter's, not a wish list
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert {METHOD_SCOPES[method] for method in called} <= scopes


def test_the_slash_command_advertises_the_team_commands() -> None:
    [command] = _manifest()["features"]["slash_commands"]
    hint = command["usage_hint"]
    for word in ("coach", "ask", "drill", "report", "onboard", "help"):
        assert word in hint
    assert len(hint) <= 1000 and len(command["description"]) <= 2000
