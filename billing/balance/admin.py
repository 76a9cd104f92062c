"""The customer page's balance: a panel with the balance per currency, the automatic top-up
rule and the latest ledger entries, and the "Adjust balance", "Issue top-up" and "Automatic
top-up" buttons, which save through the same services as the API. billing/admin.py mixes
`CustomerBalanceActions` into the customer page it registers."""

from __future__ import annotations

from django.contrib import messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import ActionInput, ObjectAction, Panel
from accounts.models import Customer
from billing.balance.selectors import balance_entries_for_customer, customer_balances
from billing.balance.services import balance_adjust
from billing.money import format_money
from billing.topups.services import balance_auto_top_up_set, top_up_create

ENTRIES_SHOWN = 20


def balance_panel(*, customer: Customer) -> Panel:
    figures = customer_balances(customer=customer)
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td style='text-align:right'><strong>{}</strong></td><td>{}</td></tr>",
        (
            (
                f.currency,
                format_money(f.amount, f.currency),
                "no automatic top-up"
                if f.auto_top_up_threshold is None
                else f"automatic top-up of {format_money(f.auto_top_up_amount, f.currency)} "
                f"below {format_money(f.auto_top_up_threshold, f.currency)}",
            )
            for f in figures
        ),
    )
    entries = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td style='text-align:right'>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                f"{e.created_at:%Y-%m-%d %H:%M}",
                e.get_kind_display(),
                format_money(e.amount, e.currency),
                _document(e),
                e.reason,
            )
            for e in balance_entries_for_customer(customer=customer)[:ENTRIES_SHOWN]
        ),
    )
    html = format_html(
        "<table><tbody>{}</tbody></table><h3>Ledger (latest {})</h3>"
        "<table><thead><tr><th>When</th><th>Kind</th><th>Amount</th><th>Document</th>"
        "<th>Reason</th></tr></thead><tbody>{}</tbody></table>",
        rows,
        ENTRIES_SHOWN,
        entries or mark_safe("<tr><td colspan='5'>No entries yet.</td></tr>"),
    )
    return Panel(
        title="Balance",
        html=html,
        note="Applied after tax to the next invoice when it is issued; a void gives it back.",
    )


def _document(entry) -> str:
    if entry.credit_note_id:
        return f"Credit note {entry.credit_note.number}"
    if entry.invoice_id:
        return f"Invoice {entry.invoice.number or entry.invoice_id}"
    return ""


class CustomerBalanceActions:
    """The customer page's balance, adjustments and top-ups: mixed into a customer admin,
    which lists `balance_actions` after its own object actions."""

    balance_actions = (
        ObjectAction(
            "adjust_balance",
            "Adjust balance",
            inputs=(
                ActionInput("amount", "Amount", placeholder="Amount, e.g. 25.00 or -25.00"),
                ActionInput("reason", "Reason", placeholder="Reason, e.g. goodwill credit"),
            ),
            help="Adds (or with a minus, takes away) money on the customer's balance, in its "
            "currency, with the reason; never below 0.",
        ),
        ObjectAction(
            "top_up",
            "Issue top-up",
            inputs=(ActionInput("amount", "Amount", placeholder="Amount, e.g. 100.00"),),
            help="Issues a top-up invoice now (no tax: a prepayment); paying it credits the "
            "balance.",
        ),
        ObjectAction(
            "auto_top_up",
            "Automatic top-up",
            inputs=(
                ActionInput("threshold", "Below", placeholder="Threshold (empty: no rule)"),
                ActionInput("amount", "Amount", placeholder="Top-up amount"),
            ),
            help="Issues a top-up invoice whenever the balance falls below the threshold "
            "(one open at a time). Leave both empty to remove the rule.",
        ),
    )

    def do_adjust_balance(self, request, customer):
        entry = balance_adjust(
            customer=customer,
            amount=request.POST.get("amount", "").strip(),
            reason=request.POST.get("reason", ""),
            now=timezone.now(),
            actor=self.actor(request),
        )
        amount = format_money(entry.amount, entry.currency)
        self.message_user(request, f"Balance adjusted by {amount}.", messages.SUCCESS)

    def do_top_up(self, request, customer):
        top_up = top_up_create(
            customer=customer,
            amount=request.POST.get("amount", "").strip(),
            now=timezone.now(),
            actor=self.actor(request),
        )
        self.message_user(
            request, f"Top-up invoice {top_up.invoice.number} issued.", messages.SUCCESS
        )

    def do_auto_top_up(self, request, customer):
        threshold = request.POST.get("threshold", "").strip() or None
        amount = request.POST.get("amount", "").strip() or None
        balance_auto_top_up_set(
            customer=customer, threshold=threshold, amount=amount, now=timezone.now()
        )
        text = "removed" if threshold is None else "saved"
        self.message_user(request, f"Automatic top-up rule {text}.", messages.SUCCESS)

    def get_change_panels(self, request, obj):
        return [*super().get_change_panels(request, obj), balance_panel(customer=obj)]
