"""The embedded default: one person, one machine, SQLite and in-process tasks."""

from config.env import env_bool
from config.settings.base import *  # noqa: F403
from config.settings.base import DATA_DIR

# Debug pages for a developer's shell; `scripts/serve.sh` turns them off (DJANGO_DEBUG=false),
# so a served dashboard never lists its URLconf or settings on an error.
DEBUG = env_bool("DJANGO_DEBUG", True)
DATA_DIR.mkdir(parents=True, exist_ok=True)
