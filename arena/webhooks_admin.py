"""Admin pages of webhooks: subscribe a URL to events, see every delivery and its answers."""

from django import forms
from django.contrib import admin, messages

from .webhooks import EVENT_CHOICES, DeliveryStatus, Webhook, WebhookDelivery, send


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Webhook
        fields = ["url", "events", "secret", "active", "project_id", "description"]


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["event", "status", "attempts", "response_code", "next_try", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    ordering = ["-id"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["url", "event_names", "active", "project_id", "created_at"]
    list_filter = ["active"]
    inlines = [DeliveryInline]

    @admin.display(description="events")
    def event_names(self, webhook):
        return ", ".join(webhook.events)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "webhook", "status", "attempts", "response_code", "next_try", "created_at"]
    list_filter = ["status", "event"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Send again (a fresh round of attempts)")
    def send_again(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        queryset.update(status=DeliveryStatus.PENDING, attempts=0, next_try=None, claimed_until=None)
        for pk in pks:
            send(pk)
        self.message_user(request, f"{len(pks)} deliveries queued again.", messages.SUCCESS)
