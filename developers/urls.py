from django.urls import path

from . import views
from . import webhook_views as wh

app_name = "developers"

urlpatterns = [
    path("a/<uuid:account_id>/api-keys/", views.ApiKeyListView.as_view(), name="apikey-list"),
    path("a/<uuid:account_id>/api-keys/new/", views.ApiKeyCreateView.as_view(), name="apikey-create"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/edit/", views.ApiKeyEditView.as_view(), name="apikey-edit"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/revoke/", views.ApiKeyRevokeView.as_view(revoked=True),
         name="apikey-revoke"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/reactivate/",
         views.ApiKeyRevokeView.as_view(revoked=False), name="apikey-reactivate"),
    path("a/<uuid:account_id>/webhooks/", wh.WebhookListView.as_view(), name="webhook-list"),
    path("a/<uuid:account_id>/webhooks/new/", wh.WebhookFormView.as_view(), name="webhook-create"),
    path("a/<uuid:account_id>/webhooks/<uuid:webhook_id>/edit/", wh.WebhookFormView.as_view(editing=True),
         name="webhook-edit"),
    path("a/<uuid:account_id>/webhooks/<uuid:webhook_id>/secret/", wh.WebhookSecretView.as_view(),
         name="webhook-secret"),
    path("a/<uuid:account_id>/webhooks/<uuid:webhook_id>/delete/", wh.WebhookDeleteView.as_view(),
         name="webhook-delete"),
    path("a/<uuid:account_id>/webhooks/<uuid:webhook_id>/deliveries/", wh.DeliveryListView.as_view(),
         name="webhook-deliveries"),
    path("a/<uuid:account_id>/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver/",
         wh.RedeliverView.as_view(), name="webhook-redeliver"),
]
