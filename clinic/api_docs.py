"""The OpenAPI schema and its browsable page, for signed-in staff and API clients only.

The schema describes every route, parameter and error of the contract: useful to an attacker
mapping the API, and it cost 0.5-2 s of CPU to build on every request. It is now served to
authenticated callers only (any role: an integrator needs it to write a client), built once per
process and language and kept (the routes only change with a deploy, which starts new processes),
and throttled. The page is the Swagger UI split into HTML and a script file, so it runs under the
Content-Security-Policy with no inline script; a visitor who is not signed in is sent to the
staff login first.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.signals import setting_changed
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from clinic.api_auth import ClientRateThrottle

# (api version, language) -> the schema as a dict, built once per process.
_built: dict[tuple[str | None, str | None], dict] = {}


def _forget_built_schemas(*, setting, **kwargs):
    # A test that changes the API's settings must see a schema built with them.
    if setting in ("REST_FRAMEWORK", "SPECTACULAR_SETTINGS", "LANGUAGES", "ROOT_URLCONF"):
        _built.clear()


setting_changed.connect(_forget_built_schemas)


class SchemaRateThrottle(ClientRateThrottle):
    """The API's per-caller count, on its own rate (``DEFAULT_THROTTLE_RATES["schema"]``)."""

    scope = "schema"


class SchemaView(SpectacularAPIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [SchemaRateThrottle]

    def _get_schema_response(self, request):
        # Only the versions and languages the site has: any other ``version`` or ``lang`` would be
        # one more schema built and kept in every process, for whoever asks. An unknown language
        # is answered in the default one (Django falls back), an unknown version as no version.
        version = self.api_version or request.version or self._get_version_parameter(request)
        if version not in (api_settings.ALLOWED_VERSIONS or ()):
            version = None
        language = request.GET.get("lang")
        if not settings.USE_I18N or language not in dict(settings.LANGUAGES):
            language = None
        key = (version, language)
        if key not in _built:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            _built[key] = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, version)
        return Response(data=_built[key], headers={"Content-Disposition": f'inline; filename="{filename}"'})


class SchemaPage(SpectacularSwaggerSplitView):
    """Swagger UI, its script served from the same view (``?script``), never inline."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [SchemaRateThrottle]
    template_name = "clinic/swagger_ui.html"
    # An HTML page: an OPTIONS would render DRF's metadata through its template (a 500).
    http_method_names = ["get", "head"]

    def permission_denied(self, request, message=None, code=None):
        if not request.user.is_authenticated and request.GET.get("script") is None:
            # A person at a browser: the staff login, then back here.
            raise _LoginFirst(request.get_full_path())
        super().permission_denied(request, message, code)

    def handle_exception(self, exc):
        if isinstance(exc, _LoginFirst):
            return redirect_to_login(exc.next_url, login_url="admin:login")
        return super().handle_exception(exc)


class _LoginFirst(Exception):
    def __init__(self, next_url: str):
        super().__init__(next_url)
        self.next_url = next_url
