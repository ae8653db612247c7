"""Configuration: defaults validate, errors name the file, key and fix, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.config import ConfigError, FileSource, SyslogUdpSource, load_config
from tests.conftest import REPO

DEFAULT = REPO / "config" / "soc.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOC_CONFIG", "SOC_DATA_DIR", "SOC_API_PORT", "SOC_SYSLOG_PORT", "SOC_API_HOST",
                 "SOC_SYSLOG_HOST", "SOC_TIMEZONE", "SOC_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOC_LANG", "en")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "soc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_default_configuration_is_valid() -> None:
    cfg = load_config(DEFAULT)
    assert cfg.api.port == 8000
    assert {"syslog_udp", "syslog_tcp", "inbox", "http"} <= set(cfg.sources)
    assert [t.type for t in cfg.transforms][:2] == ["parse", "enrich"]


def test_relative_paths_resolve_against_the_config_file() -> None:
    cfg = load_config(DEFAULT)
    assert cfg.data_dir == (REPO / "var").resolve()
    assert cfg.systems_dir == REPO / "config" / "systems"


def test_a_wrong_type_names_file_key_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "sources:\n  udp: {type: syslog_udp, port: abc}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == "sources.udp.port"
    assert "whole number" in err.value.fix
    assert "abc" in str(err.value)


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "api:\n  prot: 8000\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "api.prot"
    assert "spelling" in err.value.fix


def test_an_unknown_source_type_lists_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "sources:\n  x: {type: kafka}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key.startswith("sources.x")
    assert "syslog_udp" in err.value.fix


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "api:\n  port: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key.startswith("line ")


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "timezone: Mars/Olympus\n"))
    assert err.value.key == "timezone"


def test_a_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "SOC_CONFIG" in str(err.value)


def test_environment_overrides_ports_and_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_API_PORT", "18000")
    monkeypatch.setenv("SOC_SYSLOG_PORT", "15514")
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "data"))
    cfg = load_config(DEFAULT)
    assert cfg.api.port == 18000
    udp = cfg.sources["syslog_udp"]
    assert isinstance(udp, SyslogUdpSource) and udp.port == 15514
    assert cfg.data_dir == tmp_path / "data"


def test_soc_config_environment_variable_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "api: {port: 9999}\n")
    monkeypatch.setenv("SOC_CONFIG", str(path))
    assert load_config().api.port == 9999


def test_file_source_globs_are_resolved(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "sources:\n  f: {type: file, include: ['logs/*.log']}\n"))
    src = cfg.sources["f"]
    assert isinstance(src, FileSource)
    assert src.include == [str(tmp_path / "logs" / "*.log")]


def test_the_first_transform_must_be_parse(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "transforms: [{type: enrich}]\n"))
    assert err.value.key == "transforms"


def test_a_default_silence_interval_that_is_not_a_duration_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "health: {default_interval: soon}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "health.default_interval"
    assert "30s, 5m, 2h, 1d" in str(err.value)


def test_a_default_silence_interval_accepts_units_up_to_weeks(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "health: {default_interval: 1w}\n")).health.default_interval == "1w"
