"""The admin base that saves through services (`ServiceSaveAdmin`).

The admin, the API and the commands call the same services; an admin class whose model has
them never writes the row itself. `ServiceSaveAdmin.save_model` routes an add to
`service_create` and a change to `service_update` (both refuse until the class declares
them), copies the saved row's id and `saved_fields` onto the admin's object (Django logs and
redirects with it), and `delete_model` (and the bulk delete action) go to `service_delete`.
A refusal the form could not foresee (a state changed by a concurrent write) raises the one
`ApplicationError`; it is shown as an error message on the same page instead of a server
error, on the add/change page and on the delete page alike.

It is a mixin over `admin.ModelAdmin`: the apps combine it with their own bases
(`class PlanAdmin(ServiceSaveAdmin, TenantScopedAdmin)`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from core.errors import ApplicationError


class ServiceSaveAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes go through the model's services (module text)."""

    #: Fields of the row the service saved to copy onto the admin's object (a stored logo,
    #: the credentials as stored, `created_at`), beside its id.
    saved_fields: tuple[str, ...] = ()
    #: The service writes the inline rows too (a plan's tiers): the admin saves no formset.
    inlines_saved_by_service = False

    def form_data(self, form) -> dict[str, Any]:
        """The validated values of the admin form class's fields, for a create service."""
        return {n: form.cleaned_data[n] for n in self.form.Meta.fields if n in form.cleaned_data}

    def service_create(self, request, obj, form) -> Any:
        """Create the row from the validated, unsaved `obj` (and `form`); return it."""
        raise NotImplementedError(f"{type(self).__name__} declares no create service")

    def service_update(self, request, obj, form) -> Any:
        """Apply the change of `obj` (and `form`); return the saved row, or None."""
        raise NotImplementedError(f"{type(self).__name__} declares no update service")

    def service_delete(self, request, obj) -> None:
        """Delete `obj`; refuses until the class declares the service (or no delete)."""
        raise NotImplementedError(f"{type(self).__name__} declares no delete service")

    def save_model(self, request, obj, form, change):
        if change:
            saved = self.service_update(request, obj, form)
        else:
            saved = self.service_create(request, obj, form)
        if saved is not None:
            obj.pk = saved.pk
            for name in self.saved_fields:
                setattr(obj, name, getattr(saved, name))
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        if not self.inlines_saved_by_service:
            return super().save_related(request, form, formsets, change)
        form.save_m2m()
        for formset in formsets:  # inline rows were written by the service, or are read-only
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.service_delete(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(
                reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=[object_id],
                )
            )
