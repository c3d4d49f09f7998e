"""The app manifest an admin pastes must match what the code listens to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.channels.slack.channel import SHORTCUT_CALLBACK

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"


def test_manifest_matches_the_listeners() -> None:
    manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    features, settings = manifest["features"], manifest["settings"]
    assert [s["callback_id"] for s in features["shortcuts"]] == [SHORTCUT_CALLBACK]
    assert features["shortcuts"][0]["type"] == "message"
    assert [c["command"] for c in features["slash_commands"]] == ["/fournil"]
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        "message.im",
    }
    assert settings["interactivity"]["is_enabled"] and settings["socket_mode_enabled"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "im:write", "users:read"} == scopes
    info = manifest["display_information"]
    assert len(info["description"]) <= 140
    assert 174 <= len(info["long_description"]) <= 4000
