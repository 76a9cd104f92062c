"""factory_boy factories for the whole domain; tests build their data from these."""

from decimal import Decimal

import factory

from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount, User


class ResellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n} Ltd")
    slug = factory.Sequence(lambda n: f"reseller-{n}")
    currency = "USD"
    timezone = "UTC"
    invoice_prefix = factory.Sequence(lambda n: f"R{n}")
    sender_email = "billing@example.com"


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    reseller = factory.SubFactory(ResellerFactory)
    password = factory.PostGenerationMethodCall("set_password", "pw-Staff-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    currency = factory.LazyAttribute(lambda c: c.reseller.currency)
    tax_rate = Decimal("0")


class UpstreamAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UpstreamAccount

    reseller = factory.SubFactory(ResellerFactory)
    provider = Provider.IPFOXY
    name = factory.Sequence(lambda n: f"Upstream {n}")
    base_url = "http://127.0.0.1:8765"
    credentials = factory.LazyFunction(lambda: {"api_id": "id-1", "api_token": "tok-secret-1"})
    cost_per_gb = Decimal("1.500000")


class SubAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubAccount

    customer = factory.SubFactory(CustomerFactory)
    upstream_account = factory.SubFactory(
        UpstreamAccountFactory, reseller=factory.SelfAttribute("..customer.reseller")
    )
    upstream_id = factory.Sequence(lambda n: f"SUB{n:06d}")
    label = factory.Sequence(lambda n: f"sub-account {n}")
