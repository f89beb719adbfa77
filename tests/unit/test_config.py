from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings, redact_url


def _load(tmp_path: Path, **env: str) -> object:
    return load_settings({"TILL_DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "DATABASE_URL is not a valid URL"),
        ("mysql://root@localhost/till", "DATABASE_URL must be a PostgreSQL URL"),
        ("postgresql://postgres@localhost", "DATABASE_URL names no database"),
        ("postgresql+pg8000://u@h/db", "driver 'pg8000' is not supported"),
    ],
)
def test_bad_database_url_is_one_clear_line(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, DATABASE_URL=url)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_database_url_gets_the_asyncpg_driver(tmp_path: Path) -> None:
    settings = load_settings({"TILL_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u:pw@db:5432/till"})
    assert settings.database_url == "postgresql+asyncpg://u:pw@db:5432/till"


def test_bad_redis_env_and_log_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL must start with"):
        _load(tmp_path, REDIS_URL="http://localhost:6379")
    with pytest.raises(ConfigError, match="TILL_ENV must be one of dev, test, production"):
        _load(tmp_path, TILL_ENV="staging")
    with pytest.raises(ConfigError, match="TILL_LOG_LEVEL"):
        _load(tmp_path, TILL_LOG_LEVEL="LOUD")


def test_production_needs_a_long_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        _load(tmp_path, TILL_ENV="production")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        _load(tmp_path, TILL_ENV="production", SECRET_KEY="short")


def test_dev_secret_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"TILL_DATA_DIR": str(tmp_path)})
    second = load_settings({"TILL_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.embedded


def test_redact_url_hides_the_password() -> None:
    assert redact_url("postgresql://till:s3cret@db/till") == "postgresql://till:***@db/till"
