"""`/api/v1/reseller/settings/`: the reseller edits its own invoice settings and logo."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from accounts.models import Reseller
from tests import factories
from tests.api.conftest import key_client

URL = "/api/v1/reseller/settings/"
LOGO = "/api/v1/reseller/settings/logo/"


def _image(fmt: str, size=(120, 40)) -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    buf.seek(0)
    buf.name = f"logo.{fmt.lower()}"
    return buf


def _fields(response) -> dict:
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    return response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_get_shows_the_callers_settings(reseller_api, reseller):
    Reseller.objects.filter(pk=reseller.pk).update(tax_id="DE111", grace_period_days=4)
    body = reseller_api.get(URL).json()
    assert body["id"] == reseller.pk
    assert body["tax_id"] == "DE111"
    assert body["grace_period_days"] == 4
    assert body["logo"] is None
    assert body["timezone"] == reseller.timezone


@pytest.mark.django_db
def test_patch_changes_the_settings_and_only_them(reseller_api, reseller):
    other = factories.ResellerFactory(tax_id="FR999")
    response = reseller_api.patch(
        URL,
        {
            "address": "Hauptstr. 1\n10115 Berlin",
            "tax_id": "DE123456789",
            "payment_instructions": "IBAN DE89 3704 0044 0532 0130 00",
            "sender_email": "billing@acme.example",
            "grace_period_days": 3,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    reseller.refresh_from_db()
    assert reseller.address == "Hauptstr. 1\n10115 Berlin"
    assert reseller.tax_id == "DE123456789"
    assert reseller.sender_email == "billing@acme.example"
    assert reseller.grace_period_days == 3
    assert response.json()["payment_instructions"] == "IBAN DE89 3704 0044 0532 0130 00"
    other.refresh_from_db()
    assert other.tax_id == "FR999"


@pytest.mark.django_db
def test_patch_refuses_bad_values_and_admin_only_fields(reseller_api, reseller):
    fields = _fields(
        reseller_api.patch(
            URL,
            {"sender_email": "not-an-email", "grace_period_days": -1, "timezone": "Asia/Tokyo"},
            format="json",
        )
    )
    assert set(fields) == {"sender_email", "grace_period_days", "timezone"}
    assert fields["timezone"] == ["This field cannot be changed."]
    too_long = _fields(reseller_api.patch(URL, {"grace_period_days": 61}, format="json"))
    assert too_long == {"grace_period_days": ["At most 60 days."]}
    assert "unknown_thing" in _fields(reseller_api.patch(URL, {"unknown_thing": 1}, format="json"))
    reseller.refresh_from_db()
    assert reseller.timezone == "UTC" and reseller.sender_email == "billing@example.com"


@pytest.mark.django_db
def test_an_empty_sender_email_is_allowed_and_documented_as_such(reseller_api, reseller):
    from jsonschema import Draft202012Validator

    from tests.api.schema_check import openapi

    response = reseller_api.patch(URL, {"sender_email": ""}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["sender_email"] == ""
    components = openapi()["components"]["schemas"]
    for name in ("ResellerSettingsOutput", "MeResellerOutput"):
        spec = components[name]["properties"]["sender_email"]
        checker = Draft202012Validator.FORMAT_CHECKER
        assert Draft202012Validator(spec, format_checker=checker).is_valid(""), name


@pytest.mark.django_db
@pytest.mark.parametrize("path", [URL, LOGO])
def test_options_describes_the_settings_endpoints(reseller_api, path):
    response = reseller_api.options(path)
    assert response.status_code == 200, response.content
    assert response.json()["name"]


@pytest.mark.django_db
def test_logo_upload_that_is_not_multipart_is_a_documented_415(reseller_api):
    from tests.api.schema_check import assert_matches_schema

    response = reseller_api.put(LOGO, {"logo": "x"}, format="json")
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported_media_type"
    assert_matches_schema(response)


@pytest.mark.django_db
def test_customer_keys_cannot_read_settings(reseller):
    from accounts.api_keys import api_key_create

    customer = factories.CustomerFactory(reseller=reseller)
    _, raw = api_key_create(reseller=reseller, customer=customer, name="c")
    assert key_client(raw).get(URL).status_code in (403, 404)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_logo_upload_stores_a_png_or_jpeg(reseller_api, reseller, fmt):
    response = reseller_api.put(LOGO, {"logo": _image(fmt)}, format="multipart")
    assert response.status_code == 200, response.content
    reseller.refresh_from_db()
    path = response.json()["logo"]
    assert path == reseller.logo.name
    assert path.endswith(".png" if fmt == "PNG" else ".jpg")
    with default_storage.open(path, "rb") as fh:
        assert Image.open(fh).format == fmt

    assert reseller_api.delete(LOGO).status_code == 204
    reseller.refresh_from_db()
    assert not reseller.logo
    assert default_storage.exists(path)  # frozen invoice snapshots may still name it


@pytest.mark.django_db
def test_logo_upload_refuses_other_formats_junk_and_oversize(reseller_api, reseller, settings):
    gif = _fields(reseller_api.put(LOGO, {"logo": _image("GIF")}, format="multipart"))
    assert gif["logo"] == ["Use a PNG or JPEG image, not GIF."]
    junk = io.BytesIO(b"%PDF-1.4 not an image")
    junk.name = "logo.png"
    assert "logo" in _fields(reseller_api.put(LOGO, {"logo": junk}, format="multipart"))
    huge = _image("PNG", size=(4001, 10))
    assert (
        "4001x10" in _fields(reseller_api.put(LOGO, {"logo": huge}, format="multipart"))["logo"][0]
    )
    big = io.BytesIO(_image("PNG").getvalue() + b"\0" * 1_048_576)
    big.name = "logo.png"
    assert "larger" in _fields(reseller_api.put(LOGO, {"logo": big}, format="multipart"))["logo"][0]
    assert "logo" in _fields(reseller_api.put(LOGO, {}, format="multipart"))
    reseller.refresh_from_db()
    assert not reseller.logo


@pytest.mark.django_db
def test_the_admin_form_applies_the_same_logo_and_grace_rules(reseller):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.forms.models import model_to_dict

    from accounts.admin import ResellerForm

    data = {**model_to_dict(reseller, exclude=["logo"]), "grace_period_days": 61}
    gif = SimpleUploadedFile("logo.gif", _image("GIF").getvalue(), content_type="image/gif")
    form = ResellerForm(data=data, files={"logo": gif}, instance=reseller)
    assert not form.is_valid()
    assert form.errors["logo"] == ["Use a PNG or JPEG image, not GIF."]
    assert form.errors["grace_period_days"] == ["At most 60 days."]

    png = SimpleUploadedFile("logo.png", _image("PNG").getvalue(), content_type="image/png")
    data["grace_period_days"] = 5
    assert ResellerForm(data=data, files={"logo": png}, instance=reseller).is_valid()
