"""Clients of each channel for the audit tests: API tokens, admin logins, anonymous browsers."""

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from clinic.api_clients import api_client_create
from clinic.roles import Role, group_for

_names = itertools.count(1)


@pytest.fixture
def api_as(db):
    """``api_as(role)``: a DRF client sending a new API client's token, in ``role``."""

    def make(role: Role) -> APIClient:
        api_client, key = api_client_create(name=f"{role.value}-{next(_names)}", role=role.value)
        cache.delete(f"throttle_client_window_{api_client.user_id}")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.user = api_client.user
        return client

    return make


@pytest.fixture
def staff_as(db):
    """``staff_as(role)``: a browser logged in to the admin as a new staff user in ``role``."""

    def make(role: Role | None, *, superuser: bool = False) -> Client:
        user = get_user_model().objects.create_user(
            username=f"staff-{next(_names)}", password="pw", is_staff=True, is_superuser=superuser
        )
        if role is not None:
            user.groups.add(group_for(role))
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make
