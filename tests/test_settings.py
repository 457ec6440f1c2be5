from __future__ import annotations

from pathlib import Path

import pytest

from hello.config import Settings, load, options
from hello.errors import ConfigError


def test_defaults_serve_plain_http_on_localhost() -> None:
    loaded = load()
    assert loaded.bind == ("127.0.0.1:8000",)
    assert not loaded.tls
    assert loaded.workers == 1
    assert loaded.source("bind") == "default"


def test_layers_flags_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text('workers = 2\nlog-level = "debug"\nbind = ["127.0.0.1:1", "[::1]:2"]\n')
    loaded = load(
        flags={"workers": "4"},
        environ={"HELLO_LOG_LEVEL": "warning", "PATH": "/bin"},
        config_file=config,
    )
    assert loaded.workers == 4
    assert loaded.source("workers") == "--workers"
    assert loaded.log_level == "warning"
    assert loaded.source("log_level") == "HELLO_LOG_LEVEL"
    assert loaded.bind == ("127.0.0.1:1", "[::1]:2")
    assert loaded.source("bind") == f"bind in {config}"


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text("graceful_timeout = 2.5\n")
    loaded = load(environ={"HELLO_CONFIG": str(config)})
    assert loaded.graceful_timeout == 2.5


def test_repeatable_env_splits_on_commas() -> None:
    loaded = load(environ={"HELLO_BIND": "127.0.0.1:1, unix:/run/hello.sock"})
    assert loaded.bind == ("127.0.0.1:1", "unix:/run/hello.sock")


@pytest.mark.parametrize(
    ("bind", "ok"),
    [
        ("0.0.0.0:8443", True),
        ("[::]:8443", True),
        ("localhost:0", True),
        ("unix:/tmp/hello.sock", True),
        ("fd://3", True),
        ("8443", False),
        ("localhost", False),
        ("::1:80", False),
        ("host:99999", False),
        ("host:port", False),
        ("unix:", False),
        ("fd://x", False),
        ("", False),
    ],
)
def test_bind_forms(bind: str, ok: bool) -> None:
    if ok:
        assert load(flags={"bind": [bind]}).bind == (bind,)
    else:
        with pytest.raises(ConfigError, match=rf"^--bind {bind!r}: (expected|port must be)"):
            load(flags={"bind": [bind]})


def test_bad_value_names_source_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ={"HELLO_WORKERS": "zero"})
    assert str(caught.value) == "HELLO_WORKERS 'zero': expected a whole number of 1 or more"


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("64KiB", 65536), ("16MiB", 16 * 2**20), ("1g", 2**30), ("10 MB", 10 * 2**20)],
)
def test_sizes(text: str, size: int) -> None:
    assert load(flags={"max_body_size": text}).max_body_size == size


def test_unknown_file_key_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text('keyfil = "key.pem"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'keyfil' in config file .*hello.toml"):
        load(config_file=config)


def test_unknown_environment_variable_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown environment variable HELLO_KEYFIL"):
        load(environ={"HELLO_KEYFIL": "key.pem"})


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text("workers = \n")
    with pytest.raises(ConfigError, match=r"config file .*hello.toml: not valid TOML"):
        load(config_file=config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load(config_file=tmp_path / "absent.toml")


def test_file_value_of_wrong_shape(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text("workers = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"workers in .*: expected one value, got 2"):
        load(config_file=config)


@pytest.mark.parametrize("given", ["certfile", "keyfile"])
def test_half_a_certificate_pair_is_refused(given: str) -> None:
    missing = "keyfile" if given == "certfile" else "certfile"
    with pytest.raises(ConfigError) as caught:
        load(flags={given: "x.pem"})
    message = str(caught.value)
    assert message.startswith(f"--{given} x.pem is set but {missing} is not")
    assert f"--{missing}" in message and f"HELLO_{missing.upper()}" in message


def test_settings_are_frozen() -> None:
    loaded = load()
    with pytest.raises(AttributeError):
        loaded.workers = 3  # type: ignore[misc]


def test_every_field_is_an_option() -> None:
    names = {option.name for option in options()}
    assert names == set(Settings.__dataclass_fields__) - {"sources"}
    flags = [option.flag for option in options()]
    assert {"--bind", "--certfile", "--keyfile", "--workers", "--access-log"} <= set(flags)
