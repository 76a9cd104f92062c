"""Admin of webhooks, scoped per reseller (`TenantScopedAdmin`).

Endpoints are created through `webhook_endpoint_create` (the signing secret is shown once,
on the response after saving, never stored in messages or the session); "Rotate secret"
does the same for a new one. Deliveries and events are read-only records; deliveries can
be replayed (the list action or the change page's button), through the same service as the
API.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.admin import ObjectAction, ReadOnlyInline, TenantScopedAdmin
from core.admin import ServiceSaveAdmin
from core.errors import ApplicationError
from webhooks.catalogue import EVENT_TYPES
from webhooks.models import (
    ATTEMPT_LOG_FIELDS,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_events_validate,
    webhook_url_validate,
)


class WebhookEndpointForm(forms.ModelForm):
    enabled_events = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["reseller", "url", "description", "enabled_events", "is_active"]

    def clean(self):
        cleaned = super().clean()
        if "enabled_events" in cleaned:
            cleaned["enabled_events"] = webhook_events_validate(cleaned["enabled_events"])
        if "url" in cleaned:
            webhook_url_validate(cleaned["url"])  # a {"url": [...]} error names the field
        return cleaned


def _show_secret(admin_obj, request, endpoint, secret) -> TemplateResponse:
    context = {
        **admin_obj.admin_site.each_context(request),
        "title": "Signing secret",
        "opts": admin_obj.opts,
        "original": endpoint,
        "secret": secret,
        "back_url": admin_obj.change_url(endpoint),
    }
    response = TemplateResponse(request, "admin/webhooks/secret_shown.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "is_active", "events", "created_at", "reseller"]
    list_filter = ["is_active", "reseller"]
    search_fields = ["url", "description"]
    readonly_fields = ["disabled_reason", "created_at"]
    object_actions = (
        ObjectAction(
            "rotate_secret",
            "Rotate signing secret",
            style="danger",
            help="Every send from now on is signed with the new secret; the old one stops.",
        ),
    )

    @admin.display(description="events")
    def events(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.enabled_events)

    @staticmethod
    def _data(form) -> dict:
        return {
            n: form.cleaned_data[n] for n in ("url", "description", "is_active", "enabled_events")
        }

    def service_update(self, request, obj, form):
        return webhook_endpoint_update(endpoint=obj, **self._data(form))

    def service_create(self, request, obj, form):
        endpoint, secret = webhook_endpoint_create(
            reseller=form.cleaned_data["reseller"], **self._data(form)
        )
        request._webhook_secret = (endpoint, secret)
        return endpoint

    def service_delete(self, request, obj):
        obj.delete()

    def response_add(self, request, obj, post_url_continue=None):
        endpoint, secret = request._webhook_secret
        return _show_secret(self, request, endpoint, secret)

    def do_rotate_secret(self, request, endpoint):
        endpoint, secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
        return _show_secret(self, request, endpoint, secret)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = readonly_fields = ATTEMPT_LOG_FIELDS


class _ReadOnly(TenantScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _replay(admin_obj, request, delivery) -> bool:
    try:
        webhook_delivery_replay(delivery=delivery, now=timezone.now())
    except ApplicationError as exc:
        admin_obj.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
        return False
    return True


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = [
        "created_at",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_response_status",
        "next_attempt_at",
    ]
    list_filter = ["status", "event__type", ("endpoint", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["event", "endpoint"]
    inlines = [WebhookAttemptInline]
    actions = ["replay_selected"]
    object_actions = (ObjectAction("replay", "Replay", help="Send this event again now."),)

    def has_change_permission(self, request, obj=None):
        # The object action (replay) needs it; the form itself has only read-only fields.
        return TenantScopedAdmin.has_change_permission(self, request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.fields]

    @admin.action(description="Replay the selected deliveries")
    def replay_selected(self, request, queryset):
        replayed = sum(_replay(self, request, delivery) for delivery in queryset)
        if replayed:
            self.message_user(request, f"{replayed} deliveries queued again.", messages.SUCCESS)

    def do_replay(self, request, delivery):
        if _replay(self, request, delivery):
            self.message_user(request, "Queued again.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(_ReadOnly):
    list_display = ["created_at", "type", "public_id", "reseller"]
    list_filter = ["type", "reseller"]
    readonly_fields = ["type", "data", "created_at"]
