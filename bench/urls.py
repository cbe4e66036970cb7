"""The product's URLs and, under /bench/floor/ and /bench/duty-floor/, the floor views (bench only)."""

from django.urls import path

from bench import floor
from clinic.urls import handler404  # noqa: F401  (the API's 404s in its own format)
from clinic.urls import urlpatterns as product_urlpatterns

urlpatterns = [*product_urlpatterns]
for prefix, views in (("bench/floor", floor.plain), ("bench/duty-floor", floor.with_duties)):
    urlpatterns += [
        path(f"{prefix}/patients/", views["patients"]),
        path(f"{prefix}/patients/<uuid:id>/", views["patient"]),
        path(f"{prefix}/patients/<uuid:id>/outcomes/", views["outcomes"]),
        path(f"{prefix}/visits/", views["visits"]),
    ]
