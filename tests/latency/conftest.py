import pytest

from tests.latency import fakes


@pytest.fixture(autouse=True)
def fake_backend(tmp_path, monkeypatch):
    """The simulated backend, and a fresh table cache folder for each test."""
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return fakes.register()
