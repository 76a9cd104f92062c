import pytest
from django.core.exceptions import ValidationError

from tests.factories import CustomerFactory, SubAccountFactory, UpstreamAccountFactory


def test_sub_account_rejects_upstream_account_of_another_reseller(db):
    customer = CustomerFactory()
    foreign_upstream = UpstreamAccountFactory()  # a second reseller
    sub = SubAccountFactory.build(customer=customer, upstream_account=foreign_upstream)

    with pytest.raises(ValidationError) as info:
        sub.full_clean()

    assert "another reseller" in str(info.value.message_dict["upstream_account"])
