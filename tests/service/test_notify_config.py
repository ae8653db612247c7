"""The notifications section of the configuration file: mistakes are reported with
the file and the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.config import ConfigError, load_config

CHANNELS = """
notifications:
  channels:
    soc-mail:
      type: email
      host: mail.phutho.gov.vn
      port: 587
      starttls: true
      sender: soc@phutho.gov.vn
      to: [soc@phutho.gov.vn]
    soc-hook: {type: webhook, url: "https://siem.phutho.gov.vn/hooks/soc"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "soc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_section_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CHANNELS + """
  routes:
    - {name: all-high, min_level: high, channels: [soc-mail, soc-hook]}
"""))

    assert [r.channels for r in cfg.notifications.routes] == [["soc-mail", "soc-hook"]]


def test_a_route_naming_an_unknown_channel_names_the_file_and_the_routes_key(tmp_path: Path) -> None:
    path = write(tmp_path, CHANNELS + """
  routes:
    - {name: all-high, channels: [soc-mail]}
    - {name: communes, channels: [soc-hook, soc-telegram]}
""")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.file == str(path)
    assert caught.value.key == "notifications.routes.1.channels.1"
    assert "'soc-telegram'" in caught.value.problem and "soc-mail, soc-hook" in caught.value.problem
    assert "notifications.channels" in caught.value.fix


def test_two_routes_with_one_name_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, CHANNELS + """
  routes:
    - {name: soc, channels: [soc-mail]}
    - {name: soc, channels: [soc-hook]}
""")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.key == "notifications.routes.1.name"


def test_a_telegram_channel_without_chat_id_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """
notifications:
  channels:
    tg: {type: telegram, url: "https://api.telegram.org/bot{token}/sendMessage", token_env: SOC_TG_TOKEN}
""")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.key == "notifications.channels.tg"
    assert "chat_id" in caught.value.problem


def test_an_smtp_login_without_a_password_variable_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """
notifications:
  channels:
    mail: {type: email, host: mail.phutho.gov.vn, username: soc, sender: soc@phutho.gov.vn, to: [a@phutho.gov.vn]}
""")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.key == "notifications.channels.mail"
    assert "password_env" in caught.value.problem
