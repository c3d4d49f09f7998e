"""The Telegram channel (python-telegram-bot v22): a thin adapter over the coaching core.

`run_telegram(settings)` runs the bot (polling, or webhook when TELEGRAM_WEBHOOK_URL is
set); `build_application(settings, flow)` builds it for tests and benches. See README.md
in this folder for the BotFather set-up.
"""

from bot.channels.telegram.app import build_application, run_application, run_telegram

__all__ = ["build_application", "run_application", "run_telegram"]
