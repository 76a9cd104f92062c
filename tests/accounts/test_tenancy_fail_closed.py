"""Fail-closed tenancy (issue 18 item 5): in request code, a tenant query that is not pinned
to a reseller raises `UnscopedQueryError`, whoever makes the request (a reseller's staff or
API key, the platform operator, nobody); tasks, commands and `Model.unscoped` are free;
scoped queries, rows of objects in hand and related managers of scoped objects work."""

import pytest
from django.apps import apps
from django.db import models
from django.db.models import Count, Prefetch, Q
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path

from accounts.models import ApiKey, Customer, Reseller, SubAccount
from accounts.tenancy import (
    TenantQuerySet,
    UnscopedQueryError,
    in_request_code,
    request_code,
)
from billing.models import Invoice
from config.celery import app as celery_app
from tests import factories


def _count_customers_view(request):
    return JsonResponse({"customers": Customer.objects.count()})


def _count_own_customers_view(request):
    reseller = Reseller.objects.get(slug=request.GET["reseller"])
    return JsonResponse({"customers": Customer.objects.for_reseller(reseller).count()})


urlpatterns = [
    path("unscoped/", _count_customers_view),
    path("scoped/", _count_own_customers_view),
]


@celery_app.task(name="tests.accounts.tenancy_count_customers")
def _count_customers_task() -> int:
    return Customer.objects.count()


@pytest.fixture
def two_resellers(db):
    first, second = factories.ResellerFactory(), factories.ResellerFactory()
    factories.CustomerFactory.create_batch(2, reseller=first)
    factories.CustomerFactory.create_batch(3, reseller=second)
    return first, second


@override_settings(ROOT_URLCONF=__name__)
def test_an_unscoped_query_in_a_view_raises_naming_the_model(client, two_resellers):
    with pytest.raises(UnscopedQueryError, match=r"accounts\.Customer"):
        client.get("/unscoped/")


@override_settings(ROOT_URLCONF=__name__)
def test_an_unpinned_query_of_a_staff_request_raises_too(client, two_resellers):
    first, _ = two_resellers
    client.force_login(factories.StaffUserFactory(reseller=first))
    with pytest.raises(UnscopedQueryError, match=r"accounts\.Customer"):
        client.get("/unscoped/")


@override_settings(ROOT_URLCONF=__name__)
def test_the_platform_operator_gets_no_implicit_reseller(client, two_resellers, django_user_model):
    operator = django_user_model.objects.create_superuser("op", "op@example.com", "x")
    client.force_login(operator)
    with pytest.raises(UnscopedQueryError):
        client.get("/unscoped/")


def test_a_raw_id_is_refused_and_scoped_by_the_reseller_is_not_found(two_resellers):
    first, second = two_resellers
    theirs = Customer.objects.filter(reseller=second).first()
    with request_code():
        for evaluate in (
            lambda: Customer.objects.filter(pk=theirs.pk).exists(),
            lambda: Customer.objects.get(pk=theirs.pk),
            lambda: Customer.objects.filter(pk=theirs.pk).update(name="taken"),
        ):
            with pytest.raises(UnscopedQueryError):
                evaluate()
        mine = Customer.objects.for_reseller(first)
        assert not mine.filter(pk=theirs.pk).exists()
        with pytest.raises(Customer.DoesNotExist):
            mine.get(pk=theirs.pk)
        assert mine.filter(pk=theirs.pk).update(name="taken") == 0
    theirs.refresh_from_db()
    assert theirs.name != "taken"


@override_settings(ROOT_URLCONF=__name__)
def test_a_scoped_query_in_a_view_answers_the_resellers_rows_only(client, two_resellers):
    first, _ = two_resellers
    response = client.get("/scoped/", {"reseller": first.slug})
    assert response.json() == {"customers": 2}
    assert not in_request_code()  # cleared when the request ends


def test_the_same_query_outside_request_code_counts_every_reseller(two_resellers):
    assert not in_request_code()
    assert Customer.objects.count() == 5


def test_a_task_run_eagerly_inside_a_request_is_not_request_code(two_resellers):
    with request_code():
        assert _count_customers_task.apply().get() == 5
        assert in_request_code()  # restored after the task
        with pytest.raises(UnscopedQueryError):
            Customer.objects.count()


@pytest.mark.parametrize(
    "evaluate",
    [
        pytest.param(lambda qs: list(qs), id="fetch"),
        pytest.param(lambda qs: qs.count(), id="count"),
        pytest.param(lambda qs: qs.exists(), id="exists"),
        pytest.param(lambda qs: qs.aggregate(n=Count("pk")), id="aggregate"),
        pytest.param(lambda qs: list(qs.iterator()), id="iterator"),
        pytest.param(lambda qs: qs.first(), id="first"),
        pytest.param(lambda qs: list(qs.values_list("pk", flat=True)), id="values_list"),
        pytest.param(lambda qs: qs.update(name="x"), id="update"),
        pytest.param(lambda qs: qs.delete(), id="delete"),
        pytest.param(lambda qs: qs.in_bulk(), id="in_bulk"),
    ],
)
def test_every_way_of_evaluating_an_unscoped_query_raises_in_request_code(two_resellers, evaluate):
    with request_code(), pytest.raises(UnscopedQueryError):
        evaluate(Customer.objects.all())
    assert Customer.objects.count() == 5  # nothing was changed


def test_get_by_a_raw_id_is_unscoped_even_for_an_existing_row(two_resellers):
    customer = Customer.objects.first()
    with request_code(), pytest.raises(UnscopedQueryError):
        Customer.objects.get(pk=customer.pk)
    with request_code(), pytest.raises(UnscopedQueryError):
        SubAccount.objects.filter(customer_id=customer.pk).exists()


def test_excluding_a_reseller_or_comparing_it_does_not_scope(two_resellers):
    first, _ = two_resellers
    with request_code():
        with pytest.raises(UnscopedQueryError):
            Customer.objects.exclude(reseller=first).count()
        with pytest.raises(UnscopedQueryError):
            Customer.objects.filter(reseller__gt=first.pk).count()
        with pytest.raises(UnscopedQueryError):
            Customer.objects.filter(Q(reseller=first) | Q(name="x")).count()


def test_scoped_queries_work_in_request_code(two_resellers):
    first, second = two_resellers
    some = Customer.objects.filter(reseller=second)
    with request_code():
        assert Customer.objects.for_reseller(first).count() == 2
        assert Customer.objects.filter(reseller=first).count() == 2
        assert Customer.objects.filter(reseller_id=first.pk).count() == 2
        assert Customer.objects.filter(reseller__in=[first, second]).count() == 5
        assert Customer.objects.filter(Q(reseller=first) & Q(name__startswith="")).count() == 2
        assert Customer.objects.filter(pk__in=some.values("pk")).count() == 3
        assert Customer.objects.none().count() == 0
        assert Invoice.objects.filter(customer__reseller=first).count() == 0
        assert SubAccount.objects.filter(customer__reseller_id=first.pk).count() == 0
        # An explicit global read, named at the use.
        assert Customer.unscoped.count() == 5
        assert Customer.unscoped.filter(name__startswith="").count() == 5


def test_rows_of_objects_in_hand_are_pinned_to_those_rows(two_resellers):
    first, second = two_resellers
    mine = list(Customer.objects.filter(reseller=first))
    theirs = Customer.objects.filter(reseller=second).first()
    with request_code():
        assert Customer.objects.row_of(mine[0]).get() == mine[0]
        assert sorted(Customer.objects.rows_of(mine).values_list("pk", flat=True)) == sorted(
            c.pk for c in mine
        )
        assert Customer.objects.rows_of(iter(mine)).update(name="renamed") == 2
        assert Customer.objects.rows_of([]).count() == 0
        with pytest.raises(TypeError, match="saved Customers"):
            Customer.objects.rows_of([theirs.pk])
        with pytest.raises(TypeError, match="saved Customers"):
            Customer.objects.rows_of([Customer(reseller=first)])
        with pytest.raises(TypeError, match="saved Customers"):
            Customer.objects.rows_of([first])
    assert Customer.objects.filter(name="renamed").count() == 2


def test_related_managers_and_prefetches_of_a_scoped_object_work(two_resellers, settings):
    first, _ = two_resellers
    customer = Customer.objects.filter(reseller=first).first()
    key = ApiKey.unscoped.create(
        reseller=first, customer=customer, scope="customer", name="k", prefix="abcd1234"
    )
    with request_code():
        customer = Customer.objects.for_reseller(first).get(pk=customer.pk)
        assert list(customer.api_keys.all()) == [key]
        assert customer.api_keys.filter(name="k").count() == 1
        assert ApiKey.objects.filter(customer=customer).get() == key
        customers = list(
            Customer.objects.for_reseller(first).prefetch_related(
                Prefetch("api_keys", queryset=ApiKey.objects.order_by("pk"))
            )
        )
        assert sum(len(c.api_keys.all()) for c in customers) == 1
        # Foreign keys go through Django's plain base manager.
        assert ApiKey.objects.for_reseller(first).get().customer == customer


def test_every_tenant_model_defaults_to_the_enforcing_manager_and_has_unscoped():
    tenant_models = [m for m in apps.get_models() if getattr(m, "tenant_path", "pk") != "pk"]
    assert len(tenant_models) > 30
    for model in tenant_models:
        label = model._meta.label
        assert model._default_manager.name == "objects", label
        assert isinstance(model._default_manager.get_queryset(), TenantQuerySet), label
        assert isinstance(model.unscoped.get_queryset(), TenantQuerySet), label
        # Django's plain manager for foreign keys, refresh_from_db, save() and cascades.
        assert type(model._base_manager) is models.Manager, label
