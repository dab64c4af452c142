"""How the search runs: config, strategies, pool, journal, loop and CLI."""
from evolution.config import Config, ConfigError, load_config
from evolution.loop import RunSummary, resume, run

__all__ = ["Config", "ConfigError", "RunSummary", "load_config", "resume", "run"]
