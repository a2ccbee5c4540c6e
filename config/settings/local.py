"""The embedded default: one person, one machine, SQLite and in-process tasks."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATA_DIR

DEBUG = True
DATA_DIR.mkdir(parents=True, exist_ok=True)
