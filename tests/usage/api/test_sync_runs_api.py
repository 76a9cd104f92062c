"""`GET /api/v1/reseller/sync-runs/`: newest first, strict filters, tenancy."""

import datetime as dt

import pytest

from tests import factories
from usage.models import SyncRun

URL = "/api/v1/reseller/sync-runs/"
T0 = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)


def run(upstream, sub=None, *, status="succeeded", minutes=0, queued=False, **kwargs):
    at = T0 + dt.timedelta(minutes=minutes)
    return SyncRun.objects.create(
        upstream_account=upstream,
        sub_account=sub,
        status="queued" if queued else status,
        queued_at=at if queued else None,
        started_at=None if queued else at,
        finished_at=None if queued else at + dt.timedelta(seconds=3),
        **kwargs,
    )


@pytest.fixture
def runs(upstream_account, sub_account):
    other_upstream = factories.UpstreamAccountFactory(reseller=upstream_account.reseller)
    return {
        "old_ok": run(upstream_account, sub_account, minutes=0),
        "failed": run(
            upstream_account,
            sub_account,
            status="failed",
            minutes=60,
            error_code="upstream_auth_failed",
            error="authentication failed",
        ),
        "other": run(other_upstream, None, minutes=120, kind="discovery"),
        "queued": run(upstream_account, sub_account, minutes=90, queued=True),
    }


def ids(client, query=""):
    response = client.get(URL + query)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.django_db
def test_newest_first_queued_runs_on_top(reseller_api, runs):
    assert ids(reseller_api) == [
        runs["queued"].pk,
        runs["other"].pk,
        runs["failed"].pk,
        runs["old_ok"].pk,
    ]


@pytest.mark.django_db
def test_filters(reseller_api, runs, upstream_account, sub_account):
    assert ids(reseller_api, "?status=failed") == [runs["failed"].pk]
    assert ids(reseller_api, "?kind=discovery") == [runs["other"].pk]
    assert ids(reseller_api, f"?upstream_account={upstream_account.pk}") == [
        runs["queued"].pk,
        runs["failed"].pk,
        runs["old_ok"].pk,
    ]
    assert ids(reseller_api, f"?sub_account={sub_account.pk}&status=succeeded") == [
        runs["old_ok"].pk
    ]
    # since: started at or after; queued runs by their queue time.
    assert ids(reseller_api, "?since=2026-10-01T09:00:00Z") == [
        runs["queued"].pk,
        runs["other"].pk,
        runs["failed"].pk,
    ]
    assert ids(reseller_api, "?since=2026-10-01T10:00:00%2B00:00") == [runs["other"].pk]
    assert len(ids(reseller_api, "?since=2026-10-01")) == 4
    assert ids(reseller_api, "?since=2026-10-02") == []


@pytest.mark.django_db
def test_detail_shows_the_error(reseller_api, runs, upstream_account, sub_account):
    body = reseller_api.get(f"{URL}{runs['failed'].pk}/").json()
    assert body == {
        "id": runs["failed"].pk,
        "kind": "usage",
        "status": "failed",
        "upstream_account": upstream_account.pk,
        "sub_account": sub_account.pk,
        "window_start": None,
        "window_end": None,
        "queued_at": None,
        "started_at": "2026-10-01T09:00:00Z",
        "finished_at": "2026-10-01T09:00:03Z",
        "duration_ms": None,
        "pages": 0,
        "requests": 0,
        "rows_written": 0,
        "error_code": "upstream_auth_failed",
        "error": "authentication failed",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=exploded", "status"),
        ("?kind=everything", "kind"),
        ("?since=yesterday", "since"),
        ("?sub_account=x", "sub_account"),
        ("?upstream_account=0", "upstream_account"),
        ("?customer=1", "customer"),
        ("?status=failed&status=succeeded", "status"),
    ],
)
def test_bad_filters_are_a_400_naming_them(reseller_api, runs, query, field):
    response = reseller_api.get(URL + query)
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_another_resellers_runs_and_ids_are_404(reseller_api, runs):
    other_sub = factories.SubAccountFactory()
    foreign = run(other_sub.upstream_account, other_sub, minutes=500)

    assert foreign.pk not in ids(reseller_api)
    assert reseller_api.get(f"{URL}{foreign.pk}/").status_code == 404
    assert reseller_api.get(f"{URL}?sub_account={other_sub.pk}").status_code == 404
    assert (
        reseller_api.get(f"{URL}?upstream_account={other_sub.upstream_account_id}").status_code
        == 404
    )


@pytest.mark.django_db
def test_pagination(reseller_api, runs):
    page = reseller_api.get(URL + "?limit=2&offset=1").json()
    assert page["count"] == 4
    assert [row["id"] for row in page["results"]] == [runs["other"].pk, runs["failed"].pk]
