"""Verifier plugins: discovered through entry points, broken ones skipped, failing ones degrade
only the request that used them."""

import asyncio
import sys
import textwrap

import pytest

from verifiers.protocol import StepItem
from verifiers.registry import VerifierDeps, discover
from verifiers.scorer import VERIFIER_ERRORS, Scorer


@pytest.fixture
def installed_plugins(tmp_path, monkeypatch):
    """A distribution installed on sys.path with two entry points: one good, one broken."""
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent("""
        class Shouty:
            name = "shouty"
            def __init__(self, deps):
                self.threshold = deps.config_for("shouty").get("max_bangs", 0)
            async def score(self, items, context):
                return [0.0 if item.step.count("!") > self.threshold else 1.0 for item in items]
    """))
    dist = tmp_path / "my_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[deliberate.verifiers]\nshouty = my_plugin:Shouty\nbroken = no_such_module:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("my_plugin", None)


async def test_entry_point_plugin_is_discovered_and_broken_one_skipped(installed_plugins):
    registry = discover(VerifierDeps(config={"shouty": {"max_bangs": 1}}))
    assert {"shouty", "logic", "syntax"} <= set(registry.names())
    assert "broken" in registry.skipped and "ModuleNotFoundError" in registry.skipped["broken"]
    items = [StepItem("q", ("fine!",)), StepItem("q", ("loud!!",))]
    assert await registry.get("shouty").score(items, None) == [1.0, 0.0]


async def test_allowlist_limits_what_loads(installed_plugins):
    registry = discover(VerifierDeps(), allowlist={"logic"})
    assert registry.names() == ["logic"] and registry.skipped == {}


class Fixed:
    def __init__(self, name, value):
        self.name, self.value = name, value

    async def score(self, items, context):
        return [self.value] * len(items)


class Raising:
    name = "raising"

    async def score(self, items, context):
        raise RuntimeError("plugin bug")


class Slow:
    name = "slow"

    async def score(self, items, context):
        await asyncio.sleep(5)
        return [1.0] * len(items)


async def test_raising_and_slow_verifiers_are_left_out_and_named():
    before = VERIFIER_ERRORS.labels(verifier="raising", kind="error")._value.get()
    scorer = Scorer({"a": Fixed("a", 0.5), "raising": Raising(), "slow": Slow()},
                    weights={"a": 2.0}, timeout_s=0.05)
    result = await scorer.score([StepItem("q", ("x",)), StepItem("q", ("y",))])
    assert result.combined == [pytest.approx(0.25)] * 2  # product over the verifiers that answered
    assert set(result.per_verifier) == {"a"}
    assert "plugin bug" in result.errors["raising"] and "timed out" in result.errors["slow"]
    assert VERIFIER_ERRORS.labels(verifier="raising", kind="error")._value.get() == before + 1
    # a failed verifier is not called again within the same request
    again = await scorer.score([StepItem("q", ("z",))])
    assert again.combined == [pytest.approx(0.25)] and again.errors == {}


async def test_wrong_length_or_range_counts_as_failure():
    scorer = Scorer({"bad": Fixed("bad", 3.0)}, weights={})
    result = await scorer.score([StepItem("q", ("x",))])
    assert "outside [0, 1]" in result.errors["bad"] and result.combined == [1.0]
