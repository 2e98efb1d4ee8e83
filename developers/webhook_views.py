"""Settings → Developers → Webhooks: endpoints (the signing secret shown once), their delivery log, redelivery."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from accounts.mixins import AccountViewMixin

from . import webhooks
from .forms import WebhookForm
from .models import Webhook, WebhookDelivery
from .views import form_errors_from


def list_url(account):
    return reverse("developers:webhook-list", kwargs={"account_id": account.public_id})


def secret_shown_once(request, account, webhook, secret):
    response = TemplateResponse(request, "developers/webhook_secret.html",
                                {"account": account, "webhook": webhook, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


class WebhookMixin(AccountViewMixin):
    permission_required = "manage_developer_tools"

    def get_webhook(self) -> Webhook:
        return get_object_or_404(Webhook.objects.filter(account=self.account), public_id=self.kwargs["webhook_id"])


class WebhookListView(WebhookMixin, ListView):
    template_name = "developers/webhook_list.html"
    paginate_by = 25

    def get_queryset(self):
        return (Webhook.objects.filter(account=self.account).annotate(agent_count=Count("agents"))
                .order_by("name", "pk"))

    def get_context_data(self, **kwargs):
        return super().get_context_data(signature_header=webhooks.SIGNATURE_HEADER,
                                        timestamp_header=webhooks.TIMESTAMP_HEADER, id_header=webhooks.ID_HEADER,
                                        **kwargs)


class WebhookFormView(WebhookMixin, FormView):
    template_name = "developers/webhook_form.html"
    form_class = WebhookForm
    editing = False

    def dispatch(self, request, *args, **kwargs):
        self.webhook = None
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = {**super().get_form_kwargs(), "account": self.account}
        if self.editing:
            self.webhook = self.get_webhook()
            kwargs["initial"] = {"name": self.webhook.name, "url": self.webhook.url, "events": self.webhook.events,
                                 "agents": list(self.webhook.agents.all()), "is_active": self.webhook.is_active}
        return kwargs

    def get_context_data(self, **kwargs):
        return super().get_context_data(webhook=self.webhook, **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        values = {"name": data["name"], "url": data["url"], "events": data["events"], "agents": data["agents"],
                  "is_active": data["is_active"]}
        try:
            if self.editing:
                webhooks.webhook_update(webhook=self.webhook, by=self.request.user, request=self.request, **values)
            else:
                webhook, secret = webhooks.webhook_create(account=self.account, by=self.request.user,
                                                          request=self.request, **values)
                return secret_shown_once(self.request, self.account, webhook, secret)
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Webhook “{self.webhook.name}” saved.")
        return redirect(list_url(self.account))


class WebhookSecretView(WebhookMixin, View):
    """POST: a new signing secret, shown once."""

    def post(self, request, *args, **kwargs):
        webhook = self.get_webhook()
        secret = webhooks.webhook_regenerate_secret(webhook=webhook, by=request.user, request=request)
        return secret_shown_once(request, self.account, webhook, secret)


class WebhookDeleteView(WebhookMixin, TemplateView):
    template_name = "developers/webhook_delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(webhook=self.get_webhook(), **kwargs)

    def post(self, request, *args, **kwargs):
        webhook = self.get_webhook()
        webhooks.webhook_delete(webhook=webhook, by=request.user, request=request)
        messages.success(request, f"Webhook “{webhook.name}” deleted.")
        return redirect(list_url(self.account))


class DeliveryListView(WebhookMixin, ListView):
    """The delivery log of one endpoint, newest first, each with its attempts."""

    template_name = "developers/webhook_deliveries.html"
    paginate_by = 25

    def get_queryset(self):
        self.webhook = self.get_webhook()
        return WebhookDelivery.objects.filter(webhook=self.webhook).prefetch_related("attempt_log")

    def get_context_data(self, **kwargs):
        return super().get_context_data(webhook=self.webhook, **kwargs)


class RedeliverView(WebhookMixin, View):
    def post(self, request, *args, **kwargs):
        webhook = self.get_webhook()
        delivery = get_object_or_404(WebhookDelivery.objects.filter(webhook=webhook, account=self.account),
                                     public_id=self.kwargs["delivery_id"])
        webhooks.delivery_redeliver(delivery=delivery, by=request.user, request=request)
        messages.success(request, "Sent again: the log shows the new attempt once it has run.")
        return redirect(reverse("developers:webhook-deliveries",
                                kwargs={"account_id": self.account.public_id, "webhook_id": webhook.public_id}))
