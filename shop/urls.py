from django.urls import path

from shop import apis

app_name = "shop"

urlpatterns = [
    path("perf/toggles/", apis.ToggleListApi.as_view(), name="toggle-list"),
    path("perf/ping/", apis.PingApi.as_view(), name="ping"),
]
