"""Usage admin: read-only, and reseller staff see only their own reseller's rows."""

import datetime as dt

import pytest
from django.urls import reverse

from tests import factories
from tests.usage.fakes import utc
from usage.models import SyncRun, UpstreamSubAccount, UsageDay


def _tenant(label):
    sub = factories.SubAccountFactory(upstream_id=f"UP-{label}")
    reseller = sub.customer.reseller
    staff = factories.StaffUserFactory(reseller=reseller)
    day = UsageDay.objects.create(sub_account=sub, day=dt.date(2026, 3, 1), bytes=123)
    run = SyncRun.objects.create(
        upstream_account=sub.upstream_account,
        sub_account=sub,
        status="failed",
        error_code=f"code_{label}",
        started_at=utc(2026, 3, 1),
    )
    found = UpstreamSubAccount.objects.create(
        upstream_account=sub.upstream_account,
        upstream_id=f"FREE-{label}",
        baseline_at=utc(2026, 3, 1),
        seen_at=utc(2026, 3, 1),
    )
    return {"staff": staff, "usageday": day, "syncrun": run, "upstreamsubaccount": found}


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["usageday", "syncrun", "upstreamsubaccount"])
def test_staff_see_only_their_rows_and_cannot_change_them(client, model):
    mine, theirs = _tenant("mine"), _tenant("theirs")
    client.force_login(mine["staff"])
    listing = client.get(reverse(f"admin:usage_{model}_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    own_url = reverse(f"admin:usage_{model}_change", args=[mine[model].pk])
    foreign_url = reverse(f"admin:usage_{model}_change", args=[theirs[model].pk])
    assert own_url in html
    assert foreign_url not in html
    assert "theirs" not in html
    own = client.get(own_url)
    assert own.status_code == 200
    assert 'name="_save"' not in own.content.decode()
    foreign = client.get(foreign_url)
    assert foreign.status_code == 404
    assert client.get(reverse(f"admin:usage_{model}_add")).status_code == 403
