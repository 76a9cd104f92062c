"""The customer, sub-account and upstream account pages of accounts, extended with usage:
a 90-day daily usage chart (server-rendered SVG), sync status, "Sync now" buttons and the
customer's usage alert rules. `admin_extend` re-registers them (usage sits above accounts)."""

import datetime as dt

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.admin import (
    ActionInput,
    CustomerAdmin,
    ObjectAction,
    Panel,
    SubAccountAdmin,
    TenantScopedInline,
    UpstreamAccountAdmin,
    _date_or_none,
    _int_or_none,
    admin_extend,
)
from accounts.models import Customer, Provider, SubAccount, UpstreamAccount
from core.charts import daily_bar_chart
from core.errors import ApplicationError
from core.formatting import gb, gb_text

# Imported for its side effect: registers the usage tasks with Celery in every process that
# loads the admin (FLOWBILL_AFTER_SYNC_TASKS resolves them by name).
from usage import tasks as _tasks  # noqa: F401
from usage.admin.upstream import AllocationInline
from usage.alerts import alert_period, usage_alerts_list
from usage.models import (
    Allocation,
    SyncRun,
    UsageAlertRule,
)
from usage.selectors import (
    ledger_latest_snapshot,
    sub_account_traffic_stored,
    sync_runs_recent,
    usage_daily_series,
)
from usage.services import provisioning
from usage.services.alert_rules import RULE_FIELDS
from usage.services.allocations import allocation_create, allocation_send
from usage.services.provisioning import sub_account_add, sub_account_provision
from usage.services.requests import usage_sync_request
from usage.services.suspension import (
    customer_reinstate,
    customer_suspend,
    sub_account_close_and_cut_off,
)

CHART_DAYS = 90


class UsageAlertRuleInline(TenantScopedInline):
    model = UsageAlertRule
    extra = 0
    fields = list(RULE_FIELDS)
    verbose_name = "usage alert rule"
    verbose_name_plural = (
        "Usage alerts (once per threshold per month: e.g. 80% and 100% of a quota)"
    )


def _local_today(reseller) -> dt.date:
    return timezone.now().astimezone(reseller.tzinfo).date()


def usage_chart_panel(*, reseller, sub_account_ids: list[int], title: str) -> Panel:
    """Daily traffic of the given sub-accounts (summed) over the last 90 reseller-local days."""
    today = _local_today(reseller)
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    totals: dict[dt.date, int] = {}
    series = usage_daily_series(
        reseller=reseller,
        start_day=first,
        end_day=today + dt.timedelta(days=1),
        sub_account_ids=sub_account_ids,
    )
    for points in series.values():
        for day, nbytes in points:
            totals[day] = totals.get(day, 0) + nbytes
    days = [first + dt.timedelta(days=i) for i in range(CHART_DAYS)]
    month_start = today.replace(day=1)
    svg = daily_bar_chart(
        days=[(day, gb(totals.get(day, 0))) for day in days],
        unit="GB",
        label=f"{title}: daily traffic, last {CHART_DAYS} days",
        value_text=lambda value: f"{value:,.2f} GB",
    )
    total = sum(totals.values())
    this_month = sum(v for d, v in totals.items() if d >= month_start)
    note = (
        f"{gb_text(total)} in {CHART_DAYS} days, {gb_text(this_month)} this month so far. "
        f"Days in {reseller.timezone}; 1 GB = 1,073,741,824 bytes."
    )
    return Panel(title=f"Daily usage, last {CHART_DAYS} days", html=svg, note=note)


_EXPIRY_CHOICES = tuple((str(value), label) for value, label in Allocation.Expiry.choices)
_GB_INPUT = "Traffic (GB of 1,024 MB)"


def gb_to_bytes(text: str | None, *, upstream: UpstreamAccount, field: str) -> int:
    """An admin's "10" or "0.5" GB as bytes of the upstream's MB (1 GB = 1,024 of them); the
    services then check it is a whole, positive number of MB."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal((text or "0").strip().replace(",", ""))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ApplicationError("invalid_amount", f"{field}: give a number of GB, e.g. 10.")
    mb = amount * 1024
    if mb != mb.to_integral_value():
        raise ApplicationError(
            "invalid_amount", f"{field}: {amount} GB is not a whole number of MB."
        )
    return int(mb) * upstream.mb_bytes


class CustomerUsageAdmin(CustomerAdmin):
    """The customer page with its usage chart, alert rules and this month's alerts, and the
    buttons that act upstream: provision a sub-account, suspend, reinstate."""

    inlines = [*CustomerAdmin.inlines, UsageAlertRuleInline]
    object_actions = (
        *CustomerAdmin.object_actions,
        ObjectAction(
            "provision",
            "Provision sub-account",
            style="primary",
            inputs=(
                ActionInput("upstream_account", "Upstream account"),
                ActionInput("label", "Label", placeholder="Label, e.g. Tokyo pool"),
                ActionInput(
                    "initial_gb", _GB_INPUT, placeholder="Initial traffic in GB", value="0"
                ),
                ActionInput("expires_in_days", "Traffic expires", choices=_EXPIRY_CHOICES),
            ),
            help="Creates an IPFoxy sub-account (generated name and password) and allocates "
            "its initial traffic, exactly once.",
        ),
        ObjectAction(
            "suspend",
            "Suspend",
            style="danger",
            inputs=(ActionInput("reason", "Reason", placeholder="Reason, e.g. invoice unpaid"),),
            help="Cuts its IPFoxy sub-accounts off upstream at once (new password, IP "
            "whitelist cleared) and stops allocations; usage is still synced and billed.",
        ),
        ObjectAction(
            "reinstate",
            "Reinstate",
            style="primary",
            help="Gives each sub-account a new password (shown to the customer) and its IP "
            "whitelist back; allocations resume.",
        ),
    )

    def object_action_visible(self, request, obj, name: str) -> bool:
        suspended = obj.status == Customer.Status.SUSPENDED
        if name == "reinstate":
            return suspended
        if name in ("suspend", "provision"):
            return not suspended
        return super().object_action_visible(request, obj, name)

    def object_action_choices(self, request, obj):
        upstreams = UpstreamAccount.objects.for_reseller(obj.reseller).filter(
            provider=Provider.IPFOXY, is_active=True
        )
        return {
            **super().object_action_choices(request, obj),
            "upstream_account": tuple((str(u.pk), str(u)) for u in upstreams),
        }

    def do_provision(self, request, customer):
        upstream = (
            UpstreamAccount.objects.for_reseller(customer.reseller)
            .filter(pk=_int_or_none(request.POST.get("upstream_account")))
            .first()
        )
        if upstream is None:
            self.message_user(request, "Refused: choose an upstream account.", messages.ERROR)
            return None
        row = sub_account_provision(
            customer=customer,
            upstream_account=upstream,
            label=request.POST.get("label", ""),
            initial_bytes=gb_to_bytes(
                request.POST.get("initial_gb"), upstream=upstream, field="Initial traffic"
            ),
            expires_in_days=_int_or_none(request.POST.get("expires_in_days")) or 0,
            actor=f"login {self.actor(request)}",
            now=timezone.now(),
            send_now=True,
        )
        if row.sub_account_id is not None:
            sub = row.sub_account
            self.message_user(
                request,
                f"Sub-account {sub.upstream_id} created upstream; proxy login "
                f"{sub.proxy_username} (password on its page).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:accounts_subaccount_change", args=[sub.pk]))
        if row.status == row.Status.PENDING:
            self.message_user(
                request,
                f"{row.account} is being created upstream ({row.error_code or 'no answer yet'}); "
                "it is retried with the same key and appears under Sub-accounts when confirmed.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"Refused upstream ({row.error_code}): {row.error}", messages.ERROR
            )
        return None

    def do_suspend(self, request, customer):
        customer_suspend(
            customer=customer,
            reason=request.POST.get("reason", ""),
            actor=f"login {self.actor(request)}",
            now=timezone.now(),
        )
        self.message_user(
            request,
            f"{customer} is suspended; its IPFoxy sub-accounts are being cut off upstream.",
            messages.SUCCESS,
        )

    def do_reinstate(self, request, customer):
        customer_reinstate(
            customer=customer, actor=f"login {self.actor(request)}", now=timezone.now()
        )
        self.message_user(
            request,
            f"{customer} is reinstated; each IPFoxy sub-account gets a new password.",
            messages.SUCCESS,
        )

    def get_inlines(self, request, obj):
        # Alert rules are set on an existing customer (the add form stays the plain one).
        inlines = super().get_inlines(request, obj)
        return inlines if obj is not None else [i for i in inlines if i is not UsageAlertRuleInline]

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        ids = list(SubAccount.objects.filter(customer=obj).values_list("pk", flat=True))
        panels.insert(
            0, usage_chart_panel(reseller=obj.reseller, sub_account_ids=ids, title=str(obj))
        )
        start, _ = alert_period(reseller=obj.reseller, now=timezone.now())
        alerts = [
            a
            for a in usage_alerts_list(reseller=obj.reseller, period_start=start)
            if a.rule.customer_id == obj.pk
        ]
        if alerts:
            panels.append(
                Panel(
                    title="Usage alerts this month",
                    html=render_to_string("admin/flowbill/alerts_panel.html", {"alerts": alerts}),
                )
            )
        return panels


class SubAccountUsageAdmin(SubAccountAdmin):
    """The sub-account page with its chart, sync status, traffic, proxy login and allocation
    ledger, and the "Sync now" and "Allocate traffic" buttons. A manual add of an IPFoxy
    sub-account is checked against the upstream's list, and closing cuts it off upstream."""

    inlines = [*SubAccountAdmin.inlines, AllocationInline]
    list_display = [*SubAccountAdmin.list_display, "remaining_traffic"]
    list_select_related = [*SubAccountAdmin.list_select_related, "traffic"]
    object_actions = (
        *SubAccountAdmin.object_actions,
        ObjectAction(
            "allocate",
            "Allocate traffic",
            style="primary",
            inputs=(
                ActionInput("gb", _GB_INPUT, placeholder="GB, e.g. 10"),
                ActionInput("expires_in_days", "Expires", choices=_EXPIRY_CHOICES),
            ),
            help="Sent to IPFoxy exactly once (a ledger row with its own key); listed below.",
        ),
        ObjectAction(
            "sync_now",
            "Sync now",
            style="primary",
            help="IPFoxy: the last 72 hours again. BytesFlows: a ledger snapshot now.",
        ),
    )

    @admin.display(description="remaining", ordering="traffic__remaining_bytes")
    def remaining_traffic(self, obj):
        traffic = getattr(obj, "traffic", None)
        return gb_text(traffic.remaining_bytes) if traffic is not None else "-"

    def get_inlines(self, request, obj):
        inlines = super().get_inlines(request, obj)
        ipfoxy = obj is not None and obj.upstream_account.provider == Provider.IPFOXY
        return inlines if ipfoxy else [i for i in inlines if i is not AllocationInline]

    def object_action_visible(self, request, obj, name: str) -> bool:
        if name == "allocate":
            return (
                obj.upstream_account.provider == Provider.IPFOXY
                and obj.status == SubAccount.Status.ACTIVE
            )
        return super().object_action_visible(request, obj, name)

    def do_allocate(self, request, sub):
        allocation = allocation_create(
            sub_account=sub,
            bytes=gb_to_bytes(
                request.POST.get("gb"), upstream=sub.upstream_account, field="Traffic"
            ),
            expires_in_days=_int_or_none(request.POST.get("expires_in_days")) or 0,
            actor=f"login {self.actor(request)}",
            now=timezone.now(),
        )
        # Sent now so staff see the outcome (a send already made at the commit, or by a
        # worker, holds the row: this one then sends nothing).
        allocation_send(allocation=allocation, now=timezone.now())
        allocation.refresh_from_db()
        level = messages.SUCCESS if allocation.status != "failed" else messages.ERROR
        self.message_user(
            request,
            f"Allocation of {gb_text(allocation.bytes)} to {sub}: {allocation.status}"
            + (f" ({allocation.error_code})" if allocation.error_code else "")
            + ".",
            level,
        )

    def do_close(self, request, sub_account):
        day = _date_or_none(request.POST.get("on"))
        if day is None:
            self.message_user(request, "Refused: give its last day.", messages.ERROR)
            return None
        if not self._refused(
            request,
            sub_account_close_and_cut_off,
            sub_account=sub_account,
            on_day=day,
            actor=f"login {self.actor(request)}",
            now=timezone.now(),
        ):
            cut = sub_account.upstream_account.provider == Provider.IPFOXY
            self.message_user(
                request,
                f"{sub_account} is closed; its last day is {day}."
                + (" Its access is being cut off upstream." if cut else ""),
                messages.SUCCESS,
            )
        return None

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return form

        class AddForm(form):
            """The add form also asks IPFoxy whether it lists the upstream id (the API's
            rule: `upstream_sub_account_unknown`), before anything is saved."""

            def clean(self):
                cleaned = super().clean()
                upstream, upstream_id = cleaned.get("upstream_account"), cleaned.get("upstream_id")
                if self._errors:
                    return cleaned  # nothing asked upstream for a form refused already
                if upstream is not None and upstream_id and upstream.provider == Provider.IPFOXY:
                    try:
                        provisioning.upstream_sub_account_check(
                            upstream_account=upstream, upstream_id=upstream_id
                        )
                    except ApplicationError as exc:
                        self.add_error("upstream_id", exc.message)
                return cleaned

        return AddForm

    def service_create(self, request, obj, form):
        """Added through `sub_account_add` (checked upstream, then created)."""
        return sub_account_add(credentials=form.credentials_entered(), **self.form_data(form))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Sync needs the upstream account and its reseller (timezone) in hand.
            obj = (
                SubAccount.objects.select_related("upstream_account__reseller", "customer")
                .row_of(obj)
                .get()
            )
        return obj

    def do_sync_now(self, request, sub):
        """The API's sync request, for this one sub-account (`usage_sync_request`). Without a
        broker its task has run by now, and the message says how it ended."""
        result = usage_sync_request(
            reseller=sub.upstream_account.reseller,
            upstream_account=sub.upstream_account,
            sub_account=sub,
            now=timezone.now(),
        )
        if not result.queued:
            self.message_user(
                request,
                f"Not synced: {sub} is {sub.get_status_display().lower()}; only active "
                "sub-accounts (and closed ones until their last day ends) are synced.",
                messages.WARNING,
            )
            return
        reseller = sub.upstream_account.reseller
        run = SyncRun.objects.for_reseller(reseller).get(pk=result.queued[0].sync_run_id)
        if run.status in (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING):
            self.message_user(
                request,
                f"Sync of {sub} queued. Results appear under Sync runs and on the dashboard.",
                messages.SUCCESS,
            )
        elif run.status == SyncRun.Status.SUCCEEDED:
            self.message_user(
                request,
                f"Synced {sub}: {run.rows_written} rows changed, {run.requests} upstream requests.",
                messages.SUCCESS,
            )
        elif run.status == SyncRun.Status.SKIPPED:
            self.message_user(
                request, f"Not synced: {run.error} Try again in a minute.", messages.WARNING
            )
        else:
            self.message_user(
                request, f"Sync of {sub} failed ({run.error_code}): {run.error}", messages.ERROR
            )

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        reseller = obj.customer.reseller
        panels.append(
            usage_chart_panel(reseller=reseller, sub_account_ids=[obj.pk], title=str(obj))
        )
        if obj.upstream_account.provider == Provider.IPFOXY:
            traffic = sub_account_traffic_stored(reseller=reseller, sub_account_ids=[obj.pk]).get(
                obj.pk
            )
            figures = (
                {
                    "remaining": gb_text(traffic.remaining_bytes),
                    "allocated": gb_text(traffic.allocated_bytes),
                    "used": gb_text(traffic.used_bytes),
                }
                if traffic
                else {}
            )
            panels.append(
                Panel(
                    title="Proxy login and traffic",
                    html=render_to_string(
                        "admin/flowbill/proxy_panel.html",
                        {"sub": obj, "traffic": traffic, **figures},
                    ),
                )
            )
        runs = sync_runs_recent(reseller=reseller, sub_account_id=obj.pk, limit=5)
        snapshot = ledger_latest_snapshot(reseller=reseller, sub_account_id=obj.pk)
        panels.append(
            Panel(
                title="Sync status",
                html=render_to_string(
                    "admin/flowbill/sync_panel.html",
                    {
                        "runs": runs,
                        "snapshot": snapshot,
                        "remaining": gb_text(snapshot.available_traffic) if snapshot else "",
                        "total": gb_text(snapshot.total_traffic) if snapshot else "",
                    },
                ),
            )
        )
        return panels


class UpstreamAccountUsageAdmin(UpstreamAccountAdmin):
    """The upstream account page with a "Sync now" button for all its sub-accounts."""

    object_actions = (
        *UpstreamAccountAdmin.object_actions,
        ObjectAction(
            "sync_now",
            "Sync now",
            style="primary",
            help="Queue a sync of every active sub-account (and the IPFoxy sub-account list).",
        ),
    )

    def do_sync_now(self, request, upstream):
        """The API's sync request for this upstream account (`usage_sync_request`), with its
        sub-account list refreshed too."""
        result = usage_sync_request(
            reseller=upstream.reseller, upstream_account=upstream, now=timezone.now(), discover=True
        )
        self.message_user(
            request,
            f"Sync of {upstream.name} queued: {len(result.queued)} sub-accounts"
            + (" and the sub-account list" if upstream.provider == Provider.IPFOXY else "")
            + ". Results appear under Sync runs and on the dashboard.",
            messages.SUCCESS,
        )

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        runs = list(
            SyncRun.objects.for_reseller(obj.reseller)
            .filter(upstream_account=obj)
            .select_related("sub_account")
            .order_by("-started_at", "-pk")[:8]
        )
        panels.append(
            Panel(
                title="Latest syncs",
                html=render_to_string("admin/flowbill/sync_panel.html", {"runs": runs}),
            )
        )
        return panels


admin_extend(Customer, CustomerUsageAdmin)
admin_extend(SubAccount, SubAccountUsageAdmin)
admin_extend(UpstreamAccount, UpstreamAccountUsageAdmin)
