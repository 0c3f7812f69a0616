"""The /ui page's routes: its static files under a CSP that allows no inline script, behind
the API key (bearer, or the browser's Basic credentials) when keys are set, off by a setting."""

from __future__ import annotations

import base64
import re

import pytest

from server.settings import Settings

KEY = 's3cret"<b>'  # quotes and markup: the key goes back into the page escaped


def basic(password: str, user: str = "me") -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_the_page_and_its_files_under_a_strict_csp(client):
    r = await client.get("/ui")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    # no inline script or handler in the page itself: only its own files
    assert re.findall(r"<script[^>]*>", r.text) == ['<script src="/ui/ui.js" defer>']
    assert not re.search(r"\son[a-z]+=", r.text)
    assert '<meta name="deliberate-key" content="">' in r.text
    js = await client.get("/ui/ui.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text and "eval(" not in js.text
    assert (await client.get("/ui/ui.css")).headers["content-type"].startswith("text/css")
    missing = await client.get("/ui/secrets.txt")
    assert missing.status_code == 404 and "ui.js" in missing.json()["error"]["message"]


async def test_the_config_names_the_verifiers_and_strategies(client):
    config = (await client.get("/ui/config")).json()
    assert {"logic", "syntax"} <= set(config["verifiers"])
    assert {"auto", "beam", "mcts"} <= set(config["strategies"])
    assert config["search_verifiers"]


class TestWithKeys:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_key=KEY)

    @pytest.mark.parametrize("path", ["/ui", "/ui/ui.js", "/ui/config"])
    @pytest.mark.parametrize("headers", [{}, basic("wrong"), {"Authorization": "Bearer wrong"},
                                         {"Authorization": "Basic %%%"}])
    async def test_a_missing_or_wrong_key_gets_a_browser_challenge(self, client, path, headers):
        r = await client.get(path, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('Basic realm="Deliberate"')
        assert r.json()["error"]["code"] == "invalid_api_key"

    async def test_the_key_as_basic_password_or_bearer_opens_it(self, client):
        page = await client.get("/ui", headers=basic(KEY))
        assert page.status_code == 200
        # handed back to the page's script, escaped, for its bearer calls
        assert 'content="s3cret&quot;&lt;b&gt;"' in page.text
        assert page.headers["cache-control"] == "no-store"
        bearer = await client.get("/ui/ui.js", headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200


class TestOff:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(ui=False)

    async def test_no_ui_turns_it_off(self, client):
        for path in ("/ui", "/ui/ui.js", "/ui/config"):
            r = await client.get(path)
            assert r.status_code == 404 and "--no-ui" in r.json()["error"]["message"]
