
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views import View
from django.views.decorators.http import require_POST
from django.views.generic import FormView, TemplateView

from .access import access_or_404, resolve_access
from .forms import AccountNameForm
from .mixins import AccountViewMixin
from .models import Account
from .paging import Paginator
from .params import search_text, uuid_or_404, uuid_or_none
from .selectors import (
    children_page,
    entry_point_memberships,
    entry_points,
    search_page,
    switcher_entry,
)
from .services import account_create, account_rename, account_switched, subaccount_refusal


def _reachable(user, public_id) -> Account | None:
    if not public_id:
        return None
    account = Account.objects.filter(public_id=public_id).first()
    return account if account and resolve_access(user, account) else None


def home(request):
    """``/``: the account last chosen in the switcher, else the first one the person reaches."""
    if not request.user.is_authenticated:
        return redirect("login")
    user = request.user
    remembered = request.session.get("last_account") or (
        str(user.last_account.public_id) if user.last_account_id else None
    )
    account = _reachable(user, remembered)
    if account is None:
        tops = entry_points(user, limit=1)
        if not tops:
            return redirect("accounts:create")
        account = tops[0].account
        if remembered:
            messages.warning(
                request, f"You no longer have access to the account you last used; showing {account.name}."
            )
        request.session["last_account"] = str(account.public_id)
    return redirect(account)


class DashboardView(AccountViewMixin, TemplateView):
    template_name = "accounts/dashboard.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["max_depth"] = settings.ACCOUNT_MAX_DEPTH
        # Ancestors above the person's highest membership stay unnamed (no upward access).
        top_depth = min(m.account.depth for m in self.access.memberships)
        ctx["visible_path"] = [a if a.depth >= top_depth else None for a in self.access.ancestors]
        from .dashboard import dashboard_figures

        ctx["counts"], ctx["panels"] = dashboard_figures(self.access)
        return ctx


class OnboardingDismissView(AccountViewMixin, View):
    """Put the first-steps checklist away (it also disappears once every step is done)."""

    permission_required = "manage_settings"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        from django.utils import timezone

        Account.objects.filter(pk=self.account.pk, onboarding_dismissed_at__isnull=True).update(
            onboarding_dismissed_at=timezone.now())
        messages.info(request, "First steps put away.")
        return redirect("accounts:dashboard", account_id=self.account.public_id)


class AccountSettingsView(AccountViewMixin, FormView):
    """Settings → Account: name and the read-only account ID."""

    template_name = "accounts/settings.html"
    form_class = AccountNameForm
    permission_required = "view_settings"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.update(parent=self.account.parent, exclude=self.account)
        return kwargs

    def get_initial(self):
        return {"name": self.account.name}

    def post(self, request, *args, **kwargs):
        if not self.access.has("manage_settings"):
            messages.error(request, "Your role cannot edit this account's settings.")
            return self.render_to_response(self.get_context_data(), status=403)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            account_rename(account=self.account, name=form.cleaned_data["name"], by=self.request.user,
                           request=self.request)
        except ValidationError as exc:
            form.add_error("name", exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Account renamed to “{self.account.name}”.")
        return redirect("accounts:settings", account_id=self.account.public_id)


class AccountCreateView(FormView):
    """Create Account: a new independent account (its creator becomes Owner and is switched
    to it), or, from an account (``?from=``), a subaccount of it when that is allowed."""

    template_name = "accounts/create.html"
    form_class = AccountNameForm

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        origin = self.request.GET.get("from")
        if origin:
            access = access_or_404(self.request.user, uuid_or_404(origin))
            ctx["origin"] = access.account
            ctx["sub_refusal"] = subaccount_refusal(access.account, self.request.user, shown=True)
        return ctx

    def form_valid(self, form):
        account = account_create(name=form.cleaned_data["name"], owner=self.request.user, by=self.request.user,
                                 request=self.request)
        account_switched(user=self.request.user, to=account, request=self.request)
        messages.success(self.request, f"Created {account.name}. You are its Owner.")
        return redirect(account)


class SwitcherView(TemplateView):
    """The switcher's content: entry points, one account's children, or search results.

    htmx requests get the fragment; a plain request gets a full page (works without JS).
    Everything is paginated and loaded on demand: the whole tree is never rendered.
    """

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        return super().dispatch(request, *args, **kwargs)

    def get_template_names(self):
        return ["accounts/_switcher_items.html"] if self.request.htmx else ["accounts/switcher.html"]

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        request, user = self.request, self.request.user
        q = search_text(request.GET)
        page = request.GET.get("page", 1)
        per_page = settings.SWITCHER_PAGE_SIZE
        parent = None
        if q:
            page_obj = search_page(user, q, page=page, per_page=per_page)
            # R6: a result's parent is named only when the person reaches it too.
            entries = [{"account": a, "context": a.parent.name if a.parent_id and a.parent_reached else ""}
                       for a in page_obj]
        elif request.GET.get("parent"):
            parent = access_or_404(user, uuid_or_404(request.GET["parent"])).account
            page_obj = children_page(parent, page=page, per_page=per_page)
            entries = [{"account": a} for a in page_obj]
        else:
            # one query: the tops are few (the memberships below them are not loaded), so the page is cut here
            # rather than counted and sliced by two queries that each decide which memberships are tops
            page_obj = Paginator(entry_point_memberships(user), per_page).get_page(page)
            entries = [{"account": e.account, "role": e.role, "group": "Clients (agency access)" if e.is_client
                        else "Your accounts"} for e in map(switcher_entry, page_obj)]
        current_id, next_path = str(uuid_or_none(request.GET.get("current")) or ""), request.GET.get("next", "")
        ctx.update(
            q=q, parent=parent, page_obj=page_obj, entries=entries, current_id=current_id, next_path=next_path,
            carry=urlencode({"current": current_id, "next": next_path}),
        )
        return ctx


def same_page_under(next_path: str, account: Account) -> str:
    """The page ``next_path`` showed, under ``account``; its dashboard when that page was
    about one object (which belongs to the other account) or is not an account page."""
    try:
        match = resolve(next_path.split("?")[0])
    except Resolver404:
        return account.get_absolute_url()
    if set(match.kwargs) == {"account_id"}:
        try:
            return reverse(match.view_name, kwargs={"account_id": account.public_id})
        except NoReverseMatch:
            pass
    return account.get_absolute_url()


@login_required
@require_POST
def switch(request):
    """Switch by POST: remember the choice, audit it, open the same page under the new account."""
    access = access_or_404(request.user, uuid_or_404(request.POST.get("account", "")))
    account_switched(user=request.user, to=access.account, request=request)
    next_path = request.POST.get("next", "")
    if next_path and url_has_allowed_host_and_scheme(next_path, allowed_hosts={request.get_host()}):
        return redirect(same_page_under(next_path, access.account))
    return redirect(access.account)
