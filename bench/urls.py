"""The product's URLs and, under /bench/floor/, the floor views (bench only, never routed by the product)."""

from django.urls import path

from bench import floor
from clinic.urls import handler404  # noqa: F401  (the API's 404s in its own format)
from clinic.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    *product_urlpatterns,
    path("bench/floor/patients/", floor.patients_list),
    path("bench/floor/patients/<uuid:id>/", floor.patient_detail),
    path("bench/floor/patients/<uuid:id>/outcomes/", floor.patient_outcomes),
    path("bench/floor/visits/", floor.visits_list),
]
