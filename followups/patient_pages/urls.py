"""The patient pages, included under ``p/`` by clinic/urls.py. The names of the two pages a link
opens are those ``followups.patient_links`` reverses."""

from django.urls import path

from followups.patient_pages import views

urlpatterns = [
    path("visit/<str:token>/", views.booking, name="patient-booking"),
    path("visit/<str:token>/change/", views.booking_change, name="patient-booking-change"),
    path("visit/<str:token>/cancel/", views.booking_cancel, name="patient-booking-cancel"),
    path("visit/<str:token>/done/", views.booking_done, name="patient-booking-done"),
    path("rebook/<str:token>/", views.rebooking, name="patient-rebooking"),
    path("rebook/<str:token>/done/", views.rebooking_done, name="patient-rebooking-done"),
]
