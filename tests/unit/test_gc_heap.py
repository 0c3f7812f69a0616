"""`python -m server` freezes the start-up heap once started; an app built without asking does
not (a test process builds many apps, and a frozen app's cycles are never collected)."""

from __future__ import annotations

import gc

import pytest

from server.app import create_app
from tests.fakes import FakeEngine


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process collects everything again


@pytest.mark.parametrize("freeze", [False, True])
async def test_the_heap_is_frozen_only_when_asked(settings, unfrozen, freeze):
    app = create_app(settings, FakeEngine(), freeze_heap=freeze)
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        # a container allocated while serving: the collector still tracks and scans it
        tracked = [[]]
        assert gc.is_tracked(tracked) and any(o is tracked for o in gc.get_objects())
    # the app itself and every module already imported: far more than this test allocated
    assert (frozen > 10_000) if freeze else frozen == 0


def test_python_m_server_asks_for_it(monkeypatch):
    import types

    import server.__main__ as entry
    asked = {}

    def recording_create_app(settings, **kwargs):
        asked.update(kwargs)
        return types.SimpleNamespace(state=types.SimpleNamespace(engine_failed=False))

    class NoServer:
        def __init__(self, config):
            pass

        def run(self):
            pass

    monkeypatch.setattr(entry, "create_app", recording_create_app)
    monkeypatch.setattr(entry.uvicorn, "Server", NoServer)
    monkeypatch.setattr("sys.argv", ["python -m server"])
    entry.main()
    assert asked == {"freeze_heap": True}
