"""Endpoints about the shop itself: logging in and out with a token, the toggles and their
effective state, and the cheapest request it serves."""

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from shop import toggles
from shop.techniques import connection_pooling, db_indexes, table_partitioning

# The toggles the header refuses (shop.perf_headers.NOT_PER_REQUEST) are listed as the database
# or the process has them: the state a request really runs with, whatever a flag says.
DATABASE_STATE = {
    db_indexes.TOGGLE.name: db_indexes.in_effect,
    table_partitioning.TOGGLE.name: table_partitioning.in_effect,
}
PROCESS_STATE = {connection_pooling.TOGGLE.name: connection_pooling.in_effect}


class ToggleListApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        group = serializers.CharField()
        description = serializers.CharField()
        default = serializers.BooleanField()
        enabled = serializers.BooleanField()
        # "database": read from the database (db_indexes: are all its indexes there?);
        # "process": from this process's settings (connection_pooling: has it a pool?)
        source = serializers.ChoiceField(
            choices=["default", "environment", "override", "database", "process"]
        )

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        rows = []
        for toggle in toggles.registered():
            enabled, source = toggles.is_enabled(toggle.name), toggles.source(toggle.name)
            if toggle.name in DATABASE_STATE:
                enabled, source = DATABASE_STATE[toggle.name](), "database"
            elif toggle.name in PROCESS_STATE:
                enabled, source = PROCESS_STATE[toggle.name](), "process"
            rows.append(
                {
                    "name": toggle.name,
                    "group": toggle.group,
                    "description": toggle.description,
                    "default": toggle.default,
                    "enabled": enabled,
                    "source": source,
                }
            )
        return Response(self.OutputSerializer(rows, many=True).data)


class PingApi(APIView):
    """The cheapest request the API serves: URL routing, every middleware, authentication (one
    query with a token, none without, and none either once local_cache or cache_aside keeps the
    token's user) and DRF's dispatch and rendering, around a view that does nothing else. What any endpoint pays before its own work, and what the bench measures as
    each scenario's baseline (docs/bench.md)."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        authenticated = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response({"authenticated": request.user.is_authenticated})


class AuthTokenApi(ObtainAuthToken):
    """`POST` a username and password for the user's token; `DELETE` it to log out.

    A token has no expiry: it lasts until the user logs out, and the next login makes a new
    one. Logging in again before that answers the same token (DRF's ObtainAuthToken), so one
    user's clients share it, and logging out signs all of them out.
    """

    # ObtainAuthToken names DRF's own parsers; these are the project's (shop/parsers.py).
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return super().get_permissions()

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema. The API has one version: drf-spectacular would otherwise write any
    `?version=` into its Content-Disposition header, where a NUL or a newline is a 500."""

    @extend_schema(exclude=True)  # the schema's own endpoint, as drf-spectacular leaves it out
    def get(self, request, *args, **kwargs):
        version = request.GET.get("version")
        current = settings.SPECTACULAR_SETTINGS["VERSION"]
        if version not in (None, current):
            # JSON like every API error: this view's own renderers write YAML or OpenAPI JSON.
            message = f"The API has one version, {current}; leave the parameter out."
            return JsonResponse({"version": [message]}, status=400)
        return super().get(request, *args, **kwargs)

    def _get_version_parameter(self, request):
        return None  # info.version already says it
