from django.urls import path

from . import views

app_name = "developers"

urlpatterns = [
    path("a/<uuid:account_id>/api-keys/", views.ApiKeyListView.as_view(), name="apikey-list"),
    path("a/<uuid:account_id>/api-keys/new/", views.ApiKeyCreateView.as_view(), name="apikey-create"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/edit/", views.ApiKeyEditView.as_view(), name="apikey-edit"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/revoke/", views.ApiKeyRevokeView.as_view(revoked=True),
         name="apikey-revoke"),
    path("a/<uuid:account_id>/api-keys/<uuid:apikey_id>/reactivate/",
         views.ApiKeyRevokeView.as_view(revoked=False), name="apikey-reactivate"),
]
