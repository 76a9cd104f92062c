"""core.compiled: a queryset compiled once and run with new values returns what the ORM
returns (model instances with their select_related objects, values() dicts with annotations,
slices), compiles once, falls back to the ORM when a value does not reach the statement
unchanged, and refuses a tenant query its build does not scope."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F

from accounts.api_keys import api_key_create
from accounts.models import ApiKey, Customer
from core.compiled import CompiledQuery
from tests import factories

pytestmark = pytest.mark.django_db


def _keys_by_prefix() -> CompiledQuery:
    return CompiledQuery(
        lambda prefix: ApiKey.unscoped.select_related("reseller", "customer").filter(prefix=prefix),
        sentinels=["\x00prefix"],
    )


def test_model_rows_equal_the_orm_with_their_related_objects():
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    customer = factories.CustomerFactory(reseller=reseller, name="Ada")
    customer_key, _ = api_key_create(reseller=reseller, customer=customer, name="c")
    reseller_key, _ = api_key_create(reseller=reseller, name="r")
    ApiKey.unscoped.filter(pk=customer_key.pk).update(
        last_used_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    )
    compiled = _keys_by_prefix()

    (found,) = compiled.rows(customer_key.prefix)
    expected = ApiKey.unscoped.select_related("reseller", "customer").get(pk=customer_key.pk)
    assert [(f.attname, getattr(found, f.attname)) for f in ApiKey._meta.concrete_fields] == [
        (f.attname, getattr(expected, f.attname)) for f in ApiKey._meta.concrete_fields
    ]
    assert found.last_used_at == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    assert found._state.adding is False and found._state.db == "default"
    # select_related objects are loaded with the row (no further query) and complete.
    assert "reseller" in found._state.fields_cache and "customer" in found._state.fields_cache
    assert found.reseller.timezone == "Asia/Shanghai" and found.reseller.pk == reseller.pk
    assert found.customer.name == "Ada" and found.customer.pk == customer.pk

    (other,) = compiled.rows(reseller_key.prefix)
    assert other.pk == reseller_key.pk and other.customer is None
    assert compiled.rows("zzzzzzzz") == []


def test_compiled_once_then_run_with_each_new_value():
    reseller = factories.ResellerFactory()
    keys = [api_key_create(reseller=reseller, name=f"k{n}")[0] for n in range(3)]
    built = []

    def build(prefix):
        built.append(prefix)
        return ApiKey.unscoped.filter(prefix=prefix)

    compiled = CompiledQuery(build, sentinels=["\x00prefix"])
    assert [compiled.rows(key.prefix)[0].pk for key in keys] == [key.pk for key in keys]
    assert built == ["\x00prefix"]


def test_values_rows_with_annotations_and_slices_equal_the_orm():
    reseller = factories.ResellerFactory()
    for name in ["a", "b", "c", "d", "e"]:
        factories.CustomerFactory(reseller=reseller, name=name)
    factories.CustomerFactory(name="elsewhere")  # another reseller

    def build(reseller_id):
        return (
            Customer.objects.filter(reseller_id=reseller_id)
            .annotate(reseller_slug=F("reseller__slug"))
            .order_by("-name")
            .values("name", "reseller_slug", "created_at")
        )

    compiled = CompiledQuery(build, sentinels=[-(10**15)])
    assert compiled.rows(reseller.pk) == list(build(reseller.pk))
    assert compiled.rows(reseller.pk, limit=2, offset=1) == list(build(reseller.pk)[1:3])
    assert [row["name"] for row in compiled.rows(reseller.pk, limit=2, offset=4)] == ["a"]
    assert compiled.rows(reseller.pk)[0]["reseller_slug"] == reseller.slug


def test_a_value_the_orm_transforms_falls_back_to_the_orm():
    reseller = factories.ResellerFactory()
    factories.CustomerFactory(reseller=reseller, name="Acme Proxies")
    factories.CustomerFactory(reseller=reseller, name="Other")
    built = []

    def build(part):
        built.append(part)
        # `contains` sends "%part%": the sentinel never appears as such among the parameters.
        return Customer.objects.filter(reseller_id=reseller.pk, name__contains=part)

    compiled = CompiledQuery(build, sentinels=["\x00part"])
    assert [c.name for c in compiled.rows("Acme")] == ["Acme Proxies"]
    assert [c.name for c in compiled.rows("Oth")] == ["Other"]
    assert built == ["\x00part", "Acme", "Oth"]


def test_a_tenant_query_not_scoped_by_its_build_is_refused():
    compiled = CompiledQuery(lambda name: Customer.objects.filter(name=name), sentinels=["\x00n"])
    with pytest.raises(ImproperlyConfigured, match="scope it in `build`"):
        compiled.rows("Ada")
