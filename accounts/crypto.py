"""The model field that stores a JSON object encrypted at rest (`core.crypto`): upstream
credentials, proxy logins, webhook signing secrets. Kept here, where the migrations name it
(`accounts.crypto.EncryptedJSONField`)."""

from django.db import models

from core.crypto import SecretDict, decrypt_secret, encrypt_secret


class EncryptedJSONField(models.TextField):
    """A JSON object stored as a Fernet token; reads back as a `SecretDict`."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return SecretDict()
        return decrypt_secret(value)

    def to_python(self, value):
        if isinstance(value, SecretDict):
            return value
        if isinstance(value, dict):
            return SecretDict(value)
        if value in (None, ""):
            return SecretDict()
        return decrypt_secret(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError("EncryptedJSONField stores a dict of secrets")
        return encrypt_secret(dict(value))

    def value_to_string(self, obj):  # serializers (dumpdata) get the ciphertext only
        return self.get_prep_value(self.value_from_object(obj))
