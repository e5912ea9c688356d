"""Webhook subscriptions and their deliveries through the API, for admins only: the
model permissions on Webhook / WebhookDelivery, which the admin role holds and
researchers (staff, but not managers of integrations) do not."""

from rest_framework import mixins, serializers, viewsets

from arena.webhooks import EVENTS, Webhook, WebhookDelivery

from .permissions import ModelPermissions


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), allow_empty=False)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "secret", "active", "project_id", "description", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"secret": {"required": False}}


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "webhook", "delivery_id", "event", "payload", "status", "attempts", "response_code",
                  "response_body", "error", "log", "next_try", "created_at", "delivered_at"]  # fmt: skip
        read_only_fields = fields


class WebhookViewSet(viewsets.ModelViewSet):
    """Subscribe a URL to events: judgment.recorded, project.completed, export.finished,
    training_run.finished. The answer includes the secret that signs the deliveries."""

    queryset = Webhook.objects.all()
    serializer_class = WebhookSerializer
    permission_classes = [ModelPermissions]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every delivery, newest first, with each attempt's status code and answer (`log`)."""

    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    permission_classes = [ModelPermissions]

    def get_queryset(self):
        queryset = super().get_queryset()
        webhook = self.request.query_params.get("webhook")
        return queryset.filter(webhook_id=webhook) if webhook and webhook.isdigit() else queryset
