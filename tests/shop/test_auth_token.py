"""Logging in for a token, and logging out: the token is deleted and stops working."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_logout_deletes_the_token_and_it_stops_working():
    user, other = UserFactory(), UserFactory()
    client = APIClient()
    token = client.post(
        "/api/auth/token/", {"username": user.username, "password": "password"}, format="json"
    ).json()["token"]
    others = Token.objects.create(user=other)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/orders/").status_code == 200

    response = client.delete("/api/auth/token/")
    assert response.status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert Token.objects.filter(pk=others.pk).exists()  # only the caller's
    refused = client.get("/api/orders/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid token."}

    # Logging in again makes a new token.
    client.credentials()
    again = client.post(
        "/api/auth/token/", {"username": user.username, "password": "password"}, format="json"
    ).json()["token"]
    assert again != token


def test_logout_needs_credentials():
    before = Token.objects.count()
    response = APIClient().delete("/api/auth/token/")
    assert response.status_code == 401
    assert Token.objects.count() == before
