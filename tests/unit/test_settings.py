from __future__ import annotations

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
