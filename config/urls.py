from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api.views import ApiNotFoundView
from config.health import healthz, readyz

urlpatterns = [
    # Also answered early by config.health.HealthProbeMiddleware (no host check, no redirect).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("usage.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    # Last under api/v1/: any other path is the API's JSON 404, not Django's HTML page.
    re_path(r"^api/v1/", ApiNotFoundView.as_view()),
]
# MEDIA_ROOT (invoice PDFs, logos) is deliberately not served, not even in DEBUG: PDFs are
# reachable only through the tenancy-checked API views and the admin's download action.
