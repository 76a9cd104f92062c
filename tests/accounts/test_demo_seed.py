import io

from accounts.demo import STAFF_USER, demo_seed
from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount, User


def test_demo_seed_twice_creates_nothing_twice(db):
    first = demo_seed(stdout=io.StringIO())
    counts = [m.objects.count() for m in (Reseller, User, Customer, UpstreamAccount, SubAccount)]

    second = demo_seed(stdout=io.StringIO())

    assert first.reseller == second.reseller
    assert counts == [1, 2, 5, 2, 7]
    assert [m.objects.count() for m in (Reseller, User, Customer, UpstreamAccount, SubAccount)] == (
        counts
    )
    staff = User.objects.get(username=STAFF_USER[0])
    assert staff.reseller == first.reseller
    assert staff.check_password(STAFF_USER[1])
