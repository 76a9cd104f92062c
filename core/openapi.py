"""What every app's API documents alike: the error shape (`ApiErrorSerializer`), and the
helpers for each app's `api/openapi.py`: the OpenAPI texts (summary, description,
examples) of its operations and the descriptions of its serializer fields.

An app lists its operations as `(view, method, summary, description, examples)` and its
serializers with `{field name: description}` maps, then calls `apply_texts()` once, when
its URLs are loaded. The texts go on top of each view's own `extend_schema` (which keeps
its responses and operation ids). Field descriptions go on serializer fields, never on
model help_text (that would create migrations); a field's own help_text wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from core.errors import error_code_choices


class ApiErrorSerializer(serializers.Serializer):
    """Every error: a stable snake_case `code`, a human `message`, details in `extra`.

    Validation errors carry `extra.fields`: `{field: [messages]}` (nested for objects).
    """

    code = serializers.ChoiceField(
        choices=[],  # every registered code (`core.errors.ERROR_CODES`), filled per instance
        help_text="Stable snake_case error code; the enum lists every code with its meaning "
        "(docs/api.md).",
    )
    message = serializers.CharField(help_text="Human-readable explanation; may change.")
    extra = serializers.DictField(
        help_text="Details: `fields` ({field: [messages]}) for validation errors, else "
        "code-specific keys (e.g. `max_bytes`, `limit`)."
    )

    def get_fields(self):
        # The apps register their codes when Django starts, possibly after this class is
        # defined: read the table when a serializer (or the schema) is made.
        fields = super().get_fields()
        fields["code"].choices = error_code_choices()
        return fields


# Fields that mean the same in every app; an app's own map may override any of them.
COMMON_FIELDS = {
    "id": "Identifier.",
    "customer": "The customer's id.",
    "created_at": "When it was created (UTC).",
}

Operation = tuple[type, str, str, str | None, list[OpenApiExample]]


def example(name: str, value, *, request: bool = False, status: str = "200") -> OpenApiExample:
    """A request example, or a response example for `status`. For a list operation give one
    item: drf-spectacular wraps it in the pagination envelope (`results: [item]`)."""
    if request:
        return OpenApiExample(name, value=value, request_only=True)
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status])


def document_operation(
    view, method: str, summary: str, description: str | None = None, examples=()
) -> None:
    kwargs = {"summary": summary}
    if description:
        kwargs["description"] = description
    if examples:
        kwargs["examples"] = list(examples)
    setattr(view, method, extend_schema(**kwargs)(getattr(view, method)))


def describe_fields(serializer_class, descriptions: Mapping[str, str]) -> None:
    """Give every field of `serializer_class` without help_text its description by name."""
    fields = serializer_class().fields
    declared = serializer_class._declared_fields
    meta = getattr(serializer_class, "Meta", None)
    for name, field in fields.items():
        if field.help_text or name not in descriptions:
            continue
        text = descriptions[name]
        if name in declared:
            declared[name]._kwargs["help_text"] = text
            declared[name].help_text = text
        elif meta is not None:
            extra = {k: dict(v) for k, v in getattr(meta, "extra_kwargs", {}).items()}
            extra.setdefault(name, {})["help_text"] = text
            meta.extra_kwargs = extra


def apply_texts(
    operations: Iterable[Operation],
    fields: Iterable[tuple[Iterable[type], Mapping[str, str]]],
) -> None:
    """Document `operations`, then describe fields: `fields` pairs serializer classes with
    their description map, applied in order (a field keeps the first text it gets, so list
    the narrower maps first)."""
    for view, method, summary, description, examples in operations:
        document_operation(view, method, summary, description, examples)
    for serializer_classes, descriptions in fields:
        for serializer_class in serializer_classes:
            describe_fields(serializer_class, descriptions)
