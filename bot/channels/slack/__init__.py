"""The Slack channel (slack-bolt): Socket Mode or HTTP, a thin adapter over the core flow.

`run_slack` is what `fournil slack` runs; `build_app` and `build_web_app` are the pieces
it is made of, which tests and benchmarks serve on 127.0.0.1.
"""

from bot.channels.slack.server import build_app, build_web_app, run_slack, slack_tokens

__all__ = ["build_app", "build_web_app", "run_slack", "slack_tokens"]
