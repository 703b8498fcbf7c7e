from pathlib import Path

import pytest

from signaling.settings import DEV_API_KEY, DEV_API_SECRET, Settings, SettingsError, describe, load_settings


def test_defaults_bind_loopback_port_8080() -> None:
    s = load_settings(environ={}).settings
    assert (s.host, s.port, s.store, s.dev) == ("127.0.0.1", 8080, "sqlite", False)


def test_precedence_defaults_then_file_then_environment_then_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "urok.toml"
    cfg.write_text('port = 9000\nhost = "0.0.0.0"\nlog_level = "DEBUG"\nws_rate_burst = 5\n')
    env = {"UROK_PORT": "9100", "UROK_LOG_LEVEL": "WARNING"}
    s = load_settings(config_file=cfg, environ=env, overrides={"port": 9200}).settings
    assert s.port == 9200  # command line wins
    assert s.log_level == "WARNING"  # environment beats the file
    assert s.host == "0.0.0.0"  # the file beats the default
    assert s.ws_rate_burst == 5


def test_unknown_key_in_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "urok.toml"
    cfg.write_text("port = 9000\nprot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(config_file=cfg, environ={})


def test_wrong_type_in_config_file_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "urok.toml"
    cfg.write_text('port = "eighty"\n')
    with pytest.raises(SettingsError, match="port"):
        load_settings(config_file=cfg, environ={})


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(SettingsError, match="ws_heartbeat_s"):
        load_settings(environ={"UROK_WS_HEARTBEAT_S": "soon"})


def test_unknown_environment_variable_is_a_warning_not_an_error() -> None:
    loaded = load_settings(environ={"UROK_SUB_ROLE": "viewer", "UROK_PORT": "8181"})
    assert loaded.settings.port == 8181
    assert any("UROK_SUB_ROLE" in w for w in loaded.warnings)


def test_environment_lists_and_booleans() -> None:
    s = load_settings(environ={"UROK_ICE_SERVERS": "stun:a:3478,stun:b:3478", "UROK_DEV": "yes"}).settings
    assert s.ice_servers == ("stun:a:3478", "stun:b:3478")
    assert s.dev and s.api_key == DEV_API_KEY and s.api_secret == DEV_API_SECRET


def test_config_file_may_use_a_urok_table(tmp_path: Path) -> None:
    cfg = tmp_path / "urok.toml"
    cfg.write_text("[urok]\nport = 9300\n")
    assert load_settings(config_file=cfg, environ={}).settings.port == 9300


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file"):
        load_settings(config_file=tmp_path / "nope.toml", environ={})


def test_server_refuses_to_start_without_key_and_secret() -> None:
    with pytest.raises(SettingsError, match="api_key and api_secret"):
        Settings().check_can_serve()


def test_short_secret_refused_outside_dev_mode() -> None:
    with pytest.raises(SettingsError, match="32 characters"):
        Settings(api_key="k", api_secret="short").check_can_serve()
    Settings(api_key="k", api_secret="x" * 32).check_can_serve()


def test_invalid_values_are_refused() -> None:
    with pytest.raises(SettingsError, match="port"):
        Settings(port=70000)
    with pytest.raises(SettingsError, match="store"):
        Settings(store="postgres")


def test_sample_config_file_in_the_repo_loads() -> None:
    sample = Path(__file__).resolve().parents[2] / "urok.example.toml"
    s = load_settings(config_file=sample, environ={}).settings
    s.check_can_serve()
    assert s.log_format == "json"


def test_every_setting_is_described() -> None:
    names = {row[0] for row in describe()}
    assert {"host", "port", "api_key", "api_secret", "store"} <= names


@pytest.mark.parametrize("bad", [{"rtc_ice_consent_timeout_s": 1.0}, {"rtc_ice_consent_timeout_s": 301.0},
                                 {"rtc_retransmit_rate": 999}, {"rtc_retransmit_burst": 1000}])
def test_media_protection_settings_out_of_range_are_refused_with_their_name(bad: dict[str, float]) -> None:
    with pytest.raises(SettingsError, match=next(iter(bad))):
        Settings(**bad)
