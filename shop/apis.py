"""Endpoints about the shop itself: the toggles and their effective state."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shop import toggles


class ToggleListApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        group = serializers.CharField()
        description = serializers.CharField()
        default = serializers.BooleanField()
        enabled = serializers.BooleanField()
        source = serializers.ChoiceField(choices=["default", "environment", "override"])

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        rows = [
            {
                "name": toggle.name,
                "group": toggle.group,
                "description": toggle.description,
                "default": toggle.default,
                "enabled": toggles.is_enabled(toggle.name),
                "source": toggles.source(toggle.name),
            }
            for toggle in toggles.registered()
        ]
        return Response(self.OutputSerializer(rows, many=True).data)
