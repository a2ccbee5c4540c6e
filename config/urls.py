from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance.apis import ApiNotFoundApi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("governance.urls")),
    path("api/", include("synth_engine.urls")),
    path("api/", include("audits.urls")),
    path("", include("dashboard.urls")),
    # Last: any other path under /api/ answers 404 in the one error shape, not an HTML page.
    re_path(r"^api/", ApiNotFoundApi.as_view(), name="api-not-found"),
]
