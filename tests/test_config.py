"""Settings: file < environment; every setting documented (docs cannot drift)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from stumble.config import (
    SETTING_NAMES,
    Settings,
    load_settings,
    render_default_config,
    setting_docs,
)


def test_every_setting_is_documented() -> None:
    docs = setting_docs()
    assert set(docs) == set(SETTING_NAMES)
    assert all(len(text) > 10 for text in docs.values())


def test_file_then_environment_precedence(tmp_path: Path) -> None:
    config = tmp_path / "stumble.toml"
    config.write_text("port = 9000\nmax_events_per_batch = 50\nretention_raw_days = {prod = 30}\n")
    settings = load_settings(config, {"STUMBLE_PORT": "9100", "STUMBLE_SPOOL_FSYNC": "false"})
    assert settings.port == 9100
    assert settings.max_events_per_batch == 50
    assert settings.spool_fsync is False
    assert settings.retention_raw_days == {"prod": 30}


def test_rendered_default_config_round_trips(tmp_path: Path) -> None:
    config = tmp_path / "stumble.toml"
    config.write_text(render_default_config(Settings()))
    assert load_settings(config, {}) == Settings()


def test_unknown_or_invalid_settings_fail_clearly(tmp_path: Path) -> None:
    config = tmp_path / "stumble.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(msgspec.ValidationError, match="prot"):
        load_settings(config, {})
    with pytest.raises(msgspec.ValidationError, match="port"):
        load_settings(None, {"STUMBLE_PORT": "0"})
