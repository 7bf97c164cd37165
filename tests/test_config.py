"""Settings: file < environment; every setting documented (docs cannot drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stumble.config import (
    SETTING_NAMES,
    Settings,
    SettingsError,
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
    with pytest.raises(SettingsError, match="prot"):
        load_settings(config, {})
    with pytest.raises(SettingsError, match="port"):
        load_settings(None, {"STUMBLE_PORT": "0"})
    config.write_text("port = = 1\n")
    with pytest.raises(SettingsError, match=r"stumble\.toml"):
        load_settings(config, {})


def test_multi_line_setting_docs_stay_comments_in_the_rendered_config() -> None:
    rendered = render_default_config(Settings())
    for line in rendered.splitlines():
        assert not line or line.startswith("#") or " = " in line, line


def test_a_rate_limit_burst_below_a_full_batch_is_refused_naming_both_settings() -> None:
    # Every full batch would cost more than the bucket holds: 429 forever.
    env = {"STUMBLE_RATE_LIMIT_EVENTS_PER_S": "100", "STUMBLE_RATE_LIMIT_BURST": "499"}
    with pytest.raises(SettingsError, match="rate_limit_burst") as refused:
        load_settings(None, env)
    assert "max_events_per_batch" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(SettingsError):
        Settings(
            rate_limit_events_per_s=1.0, rate_limit_burst=10, max_events_per_batch=11
        ).validate()
    # without a rate limit the burst is unused; at the batch limit a full batch fits
    Settings(rate_limit_burst=1).validate()
    Settings(rate_limit_events_per_s=1.0, rate_limit_burst=500).validate()
