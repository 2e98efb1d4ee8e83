"""Account → API keys: list, create (the full key shown once), edit, revoke, reactivate."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, ListView

from accounts.forms import form_errors_from
from accounts.mixins import AccountViewMixin
from accounts.sorting import Column, Sorting
from members.grants import matrix_ceiling

from . import services
from .forms import ApiKeyCreateForm, ApiKeyEditForm
from .models import ApiKey
from .selectors import key_rows


def list_url(account):
    return reverse("developers:apikey-list", kwargs={"account_id": account.public_id})


API_KEY_SORTS = Sorting(
    Column("label", "label", "-created_at"),
    Column("created", "created_at", descending_first=True),
    Column("used", F("last_used_at").asc(nulls_first=True), "-created_at", descending_first=True),  # never: oldest
    Column("expires", F("expires_at").asc(nulls_last=True), "-created_at"),  # soonest first; never: latest
    default="-created",
)


class ApiKeyListView(AccountViewMixin, ListView):
    permission_required = "view_developer_tools"
    template_name = "developers/apikey_list.html"
    paginate_by = 25

    def get_queryset(self):
        self.sort = API_KEY_SORTS.parse(self.request.GET)
        return key_rows(self.account).order_by(*self.sort.order_by)

    def get_context_data(self, **kwargs):
        return super().get_context_data(sort=self.sort, extra_query=self.sort.extra_query, **kwargs)


class KeyMixin(AccountViewMixin):
    permission_required = "manage_developer_tools"

    def get_key(self) -> ApiKey:
        return get_object_or_404(ApiKey.objects.in_account(self.account).select_related("account"),
                                 public_id=self.kwargs["apikey_id"])


class ApiKeyCreateView(AccountViewMixin, FormView):
    permission_required = "manage_developer_tools"
    template_name = "developers/apikey_form.html"
    form_class = ApiKeyCreateForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "ceiling": matrix_ceiling(self.access)}

    def form_valid(self, form):
        try:
            key, full = services.apikey_create(account=self.account, by=self.request.user, request=self.request,
                                               label=form.cleaned_data["label"],
                                               expires_at=form.cleaned_data["expires_at"], scopes=form.scopes)
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        # Shown once, in this response only: never stored, never in a redirect or a message.
        response = TemplateResponse(self.request, "developers/apikey_created.html",
                                    {"key": key, "full_key": full, "account": self.account})
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyEditView(KeyMixin, FormView):
    template_name = "developers/apikey_form.html"
    form_class = ApiKeyEditForm

    def dispatch(self, request, *args, **kwargs):
        self.key = None
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        self.key = self.get_key()
        return {**super().get_form_kwargs(),
                "initial": {"label": self.key.label, "expires_at": self.key.expires_at}}

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if self.key.created_by_id != self.request.user.pk and self.key.expires_at is not None:
            form.fields["expires_at"].help_text = ("In UTC. You can bring it forward; only the key's creator can "
                                                   "extend it, since it acts with their access.")
        return form

    def get_context_data(self, **kwargs):
        return super().get_context_data(key=self.key, **kwargs)

    def form_valid(self, form):
        try:
            services.apikey_update(key=self.key, by=self.request.user, request=self.request,
                                   label=form.cleaned_data["label"], expires_at=form.cleaned_data["expires_at"])
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        except PermissionDenied as exc:  # a later expiry, asked by someone other than the key's creator
            form.add_error("expires_at", str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"API key “{self.key.label}” updated.")
        return redirect(list_url(self.account))


class ApiKeyRevokeView(KeyMixin, View):
    """POST only: revoke (``revoked=True``) or reactivate the key."""

    revoked = True

    def post(self, request, *args, **kwargs):
        try:
            key = services.apikey_set_revoked(key=self.get_key(), revoked=self.revoked, by=request.user,
                                              request=request)
        except PermissionDenied as exc:  # reactivating someone else's key
            messages.error(request, str(exc))
            return redirect(list_url(self.account))
        messages.success(request, f"API key “{key.label}” {'revoked' if self.revoked else 'reactivated'}.")
        return redirect(list_url(self.account))
