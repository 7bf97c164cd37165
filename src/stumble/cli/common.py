"""What several commands share: the data directory and settings options."""

from __future__ import annotations

import argparse
from pathlib import Path

from stumble.config import Settings, load_settings

CONFIG_FILE = "stumble.toml"


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data directory (default ./stumble-data)")
    parser.add_argument("--config", type=Path, help="settings file (default DATA/stumble.toml)")


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    """Defaults < config file < STUMBLE_* variables < these command-line values."""
    data_dir = args.data
    config = args.config
    if config is None:
        base = data_dir if data_dir is not None else Path(Settings().data_dir)
        config = base / CONFIG_FILE
    settings = load_settings(config)
    if data_dir is not None:
        settings.data_dir = str(data_dir)
    for name, value in overrides.items():
        if value is not None:
            setattr(settings, name, value)
    return settings
