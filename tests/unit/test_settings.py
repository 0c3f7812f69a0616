from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from server.settings import Settings, parse_settings


def test_defaults_serve_the_demo_model_locally(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"DELIBERATE_{name.upper()}", raising=False)
    settings = parse_settings([])
    assert (settings.model, settings.served_model_name, settings.host, settings.port,
            settings.api_key) == ("models/demo/base", "demo", "127.0.0.1", 8000, None)


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("DELIBERATE_PORT", "9000")
    monkeypatch.setenv("DELIBERATE_API_KEY", "from-env")
    monkeypatch.setenv("DELIBERATE_ENFORCE_EAGER", "false")
    settings = parse_settings(["--port", "9100", "--kv-cache-bytes", "1024"])
    assert (settings.port, settings.api_key, settings.kv_cache_bytes) == (9100, "from-env", 1024)
    assert settings.enforce_eager is False
    assert parse_settings(["--enforce-eager"]).enforce_eager is True


def test_bad_values_are_refused():
    with pytest.raises(ValidationError):
        parse_settings(["--port", "eighty"])


def test_building_the_app_does_not_import_vllm():
    # Search and verifiers import engine; the web app must stay importable without vLLM.
    code = "import sys, server.app, engine; assert 'vllm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_and_json_flags():
    from server.settings import parse_settings

    settings = parse_settings(["--adapter-roots", "a", "b", "--default-verifiers", '{"logic": 2}',
                               "--verifier-allowlist", "logic", "syntax"])
    assert settings.adapter_roots == ["a", "b"] and settings.default_verifiers == {"logic": 2.0}
    assert settings.verifier_allowlist == ["logic", "syntax"]


def test_list_flags_take_several_values_and_upstream_adds_up():
    settings = parse_settings(["--lora-modules", "prm=models/a", "orm=models/b",
                               "--upstream", "http://a:1", "http://b:2", "--upstream", "http://c:3"])
    assert settings.lora_modules == ["prm=models/a", "orm=models/b"]
    assert settings.upstreams == ["http://a:1", "http://b:2", "http://c:3"]
    assert parse_settings(["--upstreams", "http://a:1", "http://b:2"]).upstreams == [
        "http://a:1", "http://b:2"]
    assert parse_settings(["--adapter-roots"]).adapter_roots == []


def test_boolean_flags_and_empty_values():
    assert parse_settings(["--no-enable-lora"]).enable_lora is False
    assert parse_settings(["--enable-lora"]).enable_lora is True
    assert parse_settings(["--no-prompt-adapters"]).prompt_adapters is False
    # '' turns the committed router file and the resolver root off (README), and means no key
    settings = parse_settings(["--router-file", "", "--adapter-resolver-root", "",
                               "--api-key", ""])
    assert (settings.router_file, settings.adapter_resolver_root, settings.api_key) == (
        "", "", None)


def test_help_lists_every_setting_with_its_variable(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_settings(["--help"])
    assert exit_.value.code == 0
    help_ = capsys.readouterr().out
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in help_ and f"DELIBERATE_{name.upper()}" in help_
    assert re.search(r"--upstream\s", help_) and "--no-enforce-eager" in help_


def test_an_unknown_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_settings(["--max-cpu-loras", "8"])
    assert exit_.value.code == 2 and "--max-cpu-loras" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "named"), [
    (["--default-verifiers", "{bad"], "default.verifiers"),
    (["--engine", "gpu"], "engine\n.*'local' or 'remote'"),
])
def test_a_bad_flag_value_stops_the_start_with_a_message_not_a_traceback(flags, named):
    run = subprocess.run([sys.executable, "-m", "server", *flags], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert re.search(named, run.stderr)


def test_dict_flags_take_json_or_key_value_pairs():
    # pydantic-settings' forms besides JSON: KEY=VALUE, repeatable
    settings = parse_settings(["--search-verifiers", "prm=2", "--search-verifiers", "logic=0.5",
                               "--api-keys", '{"acme": "k1"}'])
    assert settings.search_verifiers == {"prm": 2.0, "logic": 0.5}
    assert settings.api_keys == {"acme": "k1"}
