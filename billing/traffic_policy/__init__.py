"""Traffic policy per customer (issue 16 item 5): the exposure selector and the credit-limit
policy run. `exposure` reads, `policy` decides and allocates, `notice` tells the customer."""

from billing.traffic_policy.exposure import Exposure, customer_exposure
from billing.traffic_policy.policy import (
    PolicyRun,
    customer_traffic_policy_apply,
    customers_on_credit_limit,
)

__all__ = [
    "Exposure",
    "PolicyRun",
    "customer_exposure",
    "customer_traffic_policy_apply",
    "customers_on_credit_limit",
]
