from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from accounts.views import home
from members.team_views import accept_invitation

admin.site.site_header = "Agency Console — platform admin"
admin.site.site_title = "Agency Console admin"
# The admin signs in through the same page as everyone (throttling, second factor), not its own form.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("accounts/", include("members.urls")),
    path("accounts/", include("security.urls")),
    path("", include("accounts.urls")),
    path("", include("workspace.urls")),
    path("", include("billing.urls")),
    path("", include("members.team_urls")),
    path("", include("agency.urls")),
    path("", include("security.account_urls")),
    path("", include("developers.urls")),
    path("", include("trust.urls")),
    path("api/v1/", include("api.urls")),
    path("invitations/<str:token>/", accept_invitation, name="invitation-accept"),
]
