from django.urls import path

from . import team_views as views

app_name = "members"

base = "a/<uuid:account_id>/members/"
urlpatterns = [
    path(base, views.MemberListView.as_view(), name="list"),
    path(f"{base}access/", views.AccessListView.as_view(), name="access"),
    path(f"{base}invite/", views.InviteView.as_view(), name="invite"),
    path(f"{base}invite/bulk/", views.BulkInviteView.as_view(), name="invite-bulk"),
    path(f"{base}leave/", views.LeaveView.as_view(), name="leave"),
    path(f"{base}transfer-ownership/", views.TransferOwnershipView.as_view(), name="transfer-ownership"),
    path(f"{base}<uuid:membership_id>/role/", views.RoleChangeView.as_view(), name="role"),
    path(f"{base}<uuid:membership_id>/remove/", views.RemoveMemberView.as_view(), name="remove"),
    path(f"{base}invitations/<uuid:invitation_id>/resend/", views.InvitationActionView.as_view(action="resend"),
         name="invitation-resend"),
    path(f"{base}invitations/<uuid:invitation_id>/revoke/", views.InvitationActionView.as_view(action="revoke"),
         name="invitation-revoke"),
]
