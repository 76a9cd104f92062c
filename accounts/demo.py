"""Demo data: a superuser, one reseller with a staff login, customers, upstream accounts
pointing at the built-in simulator, and sub-accounts. Idempotent: running it again finds
what exists and creates nothing twice."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount, User

SIMULATOR_URL = "http://127.0.0.1:8765"
SUPERUSER = ("admin", "flowbill-admin")
STAFF_USER = ("staff", "flowbill-staff")

CUSTOMERS = [
    # name, email, tax rate %, IPFoxy sub-accounts, BytesFlows sub-accounts
    ("Acme Data GmbH", "billing@acme-data.example", Decimal("19"), ["SIM00001", "SIM00002"], []),
    ("上海流量科技有限公司", "finance@sh-flow.example", Decimal("6"), ["SIM00003"], ["acme-bf"]),
    ("ООО Прокси Сервис", "buh@proxy-service.example", Decimal("20"), ["SIM00004"], []),
    ("東京スクレイピング株式会社", "keiri@tokyo-scrape.example", Decimal("10"), [], ["tokyo-bf"]),
    ("Société Générale Ñandú", "factures@nandu.example", Decimal("0"), ["SIM00005"], []),
]


@dataclass(frozen=True)
class DemoData:
    reseller: Reseller
    customers: list[Customer]

    def login_banner(self, addrport: str) -> str:
        url = f"http://{addrport}/admin/"
        return (
            f"\nFlowbill demo is ready at {url}\n"
            f"  reseller staff: {STAFF_USER[0]} / {STAFF_USER[1]}  (sees only {self.reseller})\n"
            f"  superuser:      {SUPERUSER[0]} / {SUPERUSER[1]}\n"
        )


def _ensure_user(username: str, password: str, **fields) -> User:
    user, created = User.objects.get_or_create(username=username, defaults=fields)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def demo_seed(*, stdout) -> DemoData:
    reseller, created = Reseller.objects.get_or_create(
        slug="demo",
        defaults={
            "name": "Demo Proxy Reseller Ltd",
            "address": "88 Century Avenue, Pudong\nShanghai 200120, China",
            "tax_id": "91310000DEMO0001X",
            "currency": "USD",
            "timezone": "Asia/Shanghai",
            "invoice_prefix": "DEMO",
            "payment_terms_days": 14,
            "reminder_offsets": [-3, 0, 7, 14],
            "sender_email": "billing@demo-reseller.example",
            "payment_instructions": "Bank transfer to IBAN DE00 1234 5678 9000 0000 00, "
            "reference: your invoice number.",
        },
    )
    _ensure_user(SUPERUSER[0], SUPERUSER[1], is_staff=True, is_superuser=True)
    _ensure_user(STAFF_USER[0], STAFF_USER[1], is_staff=True, reseller=reseller)

    ipfoxy, _ = UpstreamAccount.objects.get_or_create(
        reseller=reseller,
        name="IPFoxy main",
        defaults={
            "provider": Provider.IPFOXY,
            "base_url": SIMULATOR_URL,
            "credentials": {"api_id": "demo-api-id", "api_token": "demo-api-token"},
            "cost_per_gb": Decimal("0.80"),
        },
    )
    bytesflows, _ = UpstreamAccount.objects.get_or_create(
        reseller=reseller,
        name="BytesFlows",
        defaults={
            "provider": Provider.BYTESFLOWS,
            "base_url": SIMULATOR_URL,
            "cost_per_gb": Decimal("1.10"),
        },
    )

    customers = []
    for name, email, tax_rate, ipfoxy_ids, bytesflows_ids in CUSTOMERS:
        customer, _ = Customer.objects.get_or_create(
            reseller=reseller,
            name=name,
            defaults={"email": email, "tax_rate": tax_rate, "currency": reseller.currency},
        )
        customers.append(customer)
        for upstream, ids in ((ipfoxy, ipfoxy_ids), (bytesflows, bytesflows_ids)):
            for upstream_id in ids:
                credentials = {"token": f"bf-{upstream_id}"} if upstream is bytesflows else {}
                SubAccount.objects.get_or_create(
                    upstream_account=upstream,
                    upstream_id=upstream_id,
                    defaults={
                        "customer": customer,
                        "label": f"{name.split()[0]} {upstream_id}",
                        "credentials": credentials,
                    },
                )
    verb = "Created" if created else "Found"
    stdout.write(
        f"{verb} demo reseller {reseller} with {len(customers)} customers and "
        f"{SubAccount.objects.for_reseller(reseller).count()} sub-accounts."
    )
    return DemoData(reseller=reseller, customers=customers)
