from django.urls import path

from . import views

app_name = "agency"

client = "a/<uuid:account_id>/agency/"
agency = "a/<uuid:account_id>/clients/"
urlpatterns = [
    path(client, views.ClientAccessView.as_view(), name="client-access"),
    path(f"{client}settings/", views.ClientSettingsView.as_view(), name="client-settings"),
    path(f"{client}<uuid:grant_id>/decide/", views.DecideView.as_view(), name="decide"),
    path(f"{client}<uuid:grant_id>/edit/", views.GrantEditView.as_view(), name="grant-edit"),
    path(f"{client}<uuid:grant_id>/revoke/", views.RevokeView.as_view(), name="revoke"),
    path(f"{client}people/<uuid:membership_id>/remove/", views.RemoveAgencyMemberView.as_view(),
         name="remove-person"),
    path(agency, views.ClientsView.as_view(), name="clients"),
    path(f"{agency}request/", views.RequestAccessView.as_view(), name="request"),
    path(f"{agency}baseline/", views.BaselineView.as_view(), name="baseline"),
    path(f"{agency}<uuid:grant_id>/people/", views.ManageClientPeopleView.as_view(), name="client-people"),
]
