import pytest

from config.admin.site import FlowbillAdminSite
from tests.admin.seed import NOW, seed_reseller


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def alpha(db, media):
    return seed_reseller(name="Alpha", prefix="ALPHA")


@pytest.fixture
def bravo(db, media):
    return seed_reseller(name="Bravo", prefix="BRAVO")


@pytest.fixture
def pinned_now(monkeypatch):
    """The dashboard's clock at the seed's NOW."""
    monkeypatch.setattr(FlowbillAdminSite, "now", staticmethod(lambda: NOW))
    return NOW
