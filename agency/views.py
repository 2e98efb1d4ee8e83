"""Agency access pages: the client's side (agency access, agency settings) and the agency's side
(clients dashboard, access requests, who has access, baseline)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.generic import FormView, TemplateView

from accounts.forms import AccessMatrixForm
from accounts.mixins import AccountViewMixin
from accounts.paging import Paginator
from accounts.params import search_text, uuid_or_404
from accounts.permissions import matrix_of
from accounts.selectors import SubaccountRows
from members.models import Membership
from members.roles import ROLES, RoleId

from . import services
from .forms import AddAgencyMemberForm, BaselineScopeForm, DecideForm, GrantEditForm, RequestAccessForm
from .models import AgencyBaseline, AgencyGrant, AgencySettings
from .selectors import attach_agency_people, client_grants


def _text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


AGENCY_ADMIN_MATRIX = matrix_of(ROLES[RoleId.AGENCY_ADMIN].permissions)


# ---- the client's side -------------------------------------------------------------------------

class ClientSideMixin(AccountViewMixin):
    """Agency access pages of a client account: its Owner always gets in (the agency settings can
    never lock the Owner out of seeing and revoking agency access); otherwise member management."""

    def get_permission_required(self):
        return ()

    def check_governor(self):
        if not services.may_govern(self.account, self.request.user):
            raise PermissionDenied("Only the Owner or an Admin of this account manages agency access.")

    def get(self, request, *args, **kwargs):
        self.check_governor()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.check_governor()
        return super().post(request, *args, **kwargs)

    def access_url(self):
        return reverse("agency:client-access", kwargs={"account_id": self.account.public_id})


class ClientAccessView(ClientSideMixin, TemplateView):
    template_name = "agency/client_access.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        grants = list(
            AgencyGrant.objects.filter(client=self.account).exclude(status=AgencyGrant.Status.DECLINED)
            .select_related("agency", "requested_by").order_by("status", "-created_at")[:100]
        )
        people = {}
        for m in Membership.objects.filter(account=self.account, is_agency=True).select_related("user"):
            people.setdefault(m.agency_account_id, []).append(m)
        for grant in grants:
            grant.people = people.get(grant.agency_id, [])
        ctx.update(
            grants=grants, decide_form=DecideForm(),
            settings=AgencySettings.objects.filter(account=self.account).first(),
            is_root=self.account.is_root(),
            unlinked=people.get(None, []),
        )
        return ctx


class GrantActionMixin(ClientSideMixin):
    def get_grant(self):
        return get_object_or_404(AgencyGrant.objects.select_related("agency", "client"), client=self.account,
                                 public_id=self.kwargs["grant_id"])


class DecideView(GrantActionMixin, TemplateView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.check_governor()
        form = DecideForm(request.POST)
        grant = self.get_grant()
        if not form.is_valid():
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
            return redirect(self.access_url())
        approve = form.cleaned_data["decision"] == "approve"
        try:
            services.access_decide(grant=grant, approve=approve, by=request.user,
                                   expires_at=form.cleaned_data["expires_at"], request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _text(exc))
        else:
            messages.success(request, f"{grant.agency.name} now has agency access." if approve
                             else f"You declined {grant.agency.name}'s request.")
        return redirect(self.access_url())


class GrantEditView(GrantActionMixin, TemplateView):
    """Narrow (cap by category), extend or shorten an agency's access."""

    template_name = "agency/grant_edit.html"

    def forms(self, data=None):
        grant = self.get_grant()
        initial_day = grant.expires_at.date() if grant.expires_at else None
        return (GrantEditForm(data, initial={"expires_at": initial_day}),
                AccessMatrixForm(data, prefix="cap", current=grant.matrix or AGENCY_ADMIN_MATRIX,
                                 ceiling=services.grant_matrix_ceiling(self.account, self.request.user)))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if "edit_form" not in kwargs:
            ctx["edit_form"], ctx["matrix_form"] = self.forms()
        ctx["grant"] = self.get_grant()
        return ctx

    def post(self, request, *args, **kwargs):
        self.check_governor()
        edit_form, matrix_form = self.forms(request.POST)
        if edit_form.is_valid() and matrix_form.is_valid():
            try:
                services.access_update(grant=self.get_grant(), by=request.user,
                                       expires_at=edit_form.cleaned_data["expires_at"], matrix=matrix_form.matrix,
                                       request=request)
            except (ValidationError, PermissionDenied) as exc:
                edit_form.add_error(None, _text(exc))
            else:
                messages.success(request, "Agency access updated. It applies on their next request.")
                return redirect(self.access_url())
        return self.render_to_response(self.get_context_data(edit_form=edit_form, matrix_form=matrix_form))


class RevokeView(GrantActionMixin, TemplateView):
    """GET asks for confirmation and lists the members the agency's people added, all selected (R3)."""

    template_name = "agency/confirm_revoke.html"

    def get_context_data(self, **kwargs):
        grant = self.get_grant()
        return super().get_context_data(grant=grant, added=list(services.added_through(grant)[:500]), **kwargs)

    def post(self, request, *args, **kwargs):
        self.check_governor()
        grant = self.get_grant()
        ids = request.POST.getlist("remove")
        added = {str(m.public_id): m for m in services.added_through(grant)}
        unknown = [i for i in ids if i not in added]
        if unknown:
            messages.error(request, "Some of the selected members were not added by this agency; nothing changed.")
            return redirect("agency:revoke", account_id=self.account.public_id, grant_id=grant.public_id)
        try:
            services.access_revoke(grant=grant, by=request.user, remove=[added[i] for i in ids], request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _text(exc))
        else:
            removed = (f" {len(ids)} member{pluralize(len(ids))} it added {pluralize(len(ids), 'was,were')} removed."
                       if ids else "")
            messages.success(request, f"{grant.agency.name}'s access ended. Its people lose it on their next "
                                      f"click.{removed}")
        return redirect(self.access_url())


class RemoveAgencyMemberView(ClientSideMixin, TemplateView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.check_governor()
        membership = get_object_or_404(Membership.objects.select_related("user"), account=self.account,
                                       is_agency=True, public_id=kwargs["membership_id"])
        services.agency_member_remove(membership=membership, by=request.user, request=request)
        messages.success(request, f"{membership.user.email} no longer has agency access.")
        return redirect(self.access_url())


class ClientSettingsView(ClientSideMixin, FormView):
    """Settings → Agency: what every non-agency member, the Owner included, may use while agency access is on."""

    template_name = "agency/client_settings.html"
    form_class = AccessMatrixForm

    def get_form_kwargs(self):
        row = services.settings_for(self.account)
        return {**super().get_form_kwargs(), "current": row.matrix,
                "ceiling": services.settings_ceiling(self.account, self.request.user)}

    def get_context_data(self, **kwargs):
        return super().get_context_data(settings=services.settings_for(self.account), **kwargs)

    def form_valid(self, form):
        try:
            services.settings_update(client=self.account, matrix=form.matrix, by=self.request.user,
                                     request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _text(exc))
            return self.form_invalid(form)
        messages.success(self.request, "Agency settings saved. Non-agency members get them on their next request.")
        return redirect("agency:client-settings", account_id=self.account.public_id)


# ---- the agency's side -------------------------------------------------------------------------

class AgencySideMixin(AccountViewMixin):
    permission_required = "view_subaccounts"

    def clients_url(self):
        return reverse("agency:clients", kwargs={"account_id": self.account.public_id})


CLIENTS_PER_PAGE = 25


class ClientsView(AgencySideMixin, TemplateView):
    """All the agency's customers side by side: parent-billed subaccounts and client-owned accounts
    under agency access (the hybrid model)."""

    template_name = "agency/clients.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = self.request.GET
        q = search_text(params)
        # R11: searchable like the Subaccounts page
        clients = Paginator(client_grants(self.account, q), CLIENTS_PER_PAGE).get_page(params.get("page", 1))
        attach_agency_people(clients.object_list, self.account)
        # direct subaccounts, figures for the page's rows only
        subs = SubaccountRows(self.account, order=("name", "pk"), text=q).expect(params.get("spage", 1),
                                                                                   CLIENTS_PER_PAGE)
        subaccounts = Paginator(subs, CLIENTS_PER_PAGE).get_page(params.get("spage", 1))
        ctx.update(
            q=q, subaccounts=subaccounts, clients=clients,
            # each list's links keep the other list's page
            clients_query=f"spage={subaccounts.number}&", subaccounts_query=f"page={clients.number}&",
            can_request=self.access.has("manage_members") and self.account.is_root(),
        )
        return ctx


class RequestAccessView(AgencySideMixin, FormView):
    permission_required = "manage_members"
    template_name = "agency/request_access.html"
    form_class = RequestAccessForm

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            services.access_request(agency=self.account, client=data["client"], by=self.request.user,
                                            expires_at=data["expires_at"], note=data["note"], request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _text(exc))
            return self.form_invalid(form)
        messages.success(self.request, "Request sent. The account's Owner will find it under Agency access; it shows "
                                       "here once they approve.")
        return redirect(self.clients_url())


class ManageClientPeopleView(AgencySideMixin, TemplateView):
    """Which of the agency's people have access to one client; add or remove them."""

    permission_required = "manage_members"
    template_name = "agency/client_people.html"

    def get_grant(self):
        return get_object_or_404(AgencyGrant.objects.select_related("client"), agency=self.account,
                                 public_id=self.kwargs["grant_id"])

    def candidates(self, grant):
        inside = Membership.objects.filter(account=grant.client).values("user_id")
        return (Membership.objects.filter(account=self.account, is_agency=False).exclude(user_id__in=inside)
                .select_related("user").order_by("user__email"))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        grant = self.get_grant()
        ctx.update(grant=grant, people=Membership.objects.filter(account=grant.client, is_agency=True,
                                                                 agency_account=self.account).select_related("user"))
        ctx.setdefault("add_form", AddAgencyMemberForm(candidates=self.candidates(grant)))
        return ctx

    def post(self, request, *args, **kwargs):
        grant = self.get_grant()
        if request.POST.get("remove"):
            membership = get_object_or_404(Membership, account=grant.client, is_agency=True,
                                           agency_account=self.account,
                                           public_id=uuid_or_404(request.POST["remove"], "No such person."))
            services.agency_member_remove(membership=membership, by=request.user, request=request)
            messages.success(request, "Access removed.")
            return redirect(request.path)
        form = AddAgencyMemberForm(request.POST, candidates=self.candidates(grant))
        if form.is_valid():
            try:
                services.agency_member_add(grant=grant, user=form.cleaned_data["membership"].user, by=request.user,
                                           request=request)
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, _text(exc))
            else:
                messages.success(request, f"{form.cleaned_data['membership'].user.email} now has access to "
                                          f"{grant.client.name}.")
                return redirect(request.path)
        return self.render_to_response(self.get_context_data(add_form=form))


class BaselineView(AgencySideMixin, TemplateView):
    """The default access baseline for agency-managed clients. Saving asks whether existing clients
    follow, and names them."""

    permission_required = "manage_members"
    template_name = "agency/baseline.html"

    def matrix_form(self, data=None):
        row = AgencyBaseline.objects.filter(account=self.account).first()
        return AccessMatrixForm(data, current=row.matrix if row else {}, ceiling=None)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("form", self.matrix_form())
        return ctx

    def post(self, request, *args, **kwargs):
        form = self.matrix_form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        affected = services.baseline_affected_clients(self.account, form.matrix)
        scope = BaselineScopeForm(request.POST if "scope" in request.POST else None)
        if affected and not scope.is_bound:
            return self.render_to_response(self.get_context_data(form=form, affected=affected, scope_form=scope))
        apply = bool(affected) and scope.is_valid() and scope.cleaned_data["scope"] == "existing"
        changed = services.baseline_update(agency=self.account, matrix=form.matrix, by=request.user,
                                           apply_to_existing=apply, request=request)
        left = len(affected) - len(changed) if apply else 0
        applied = (f" and applied to {len(changed)} client{pluralize(len(changed))}" if changed
                   else "; existing clients keep their settings")
        own = (f" {left} client{pluralize(left, ' decides,s decide')} their own agency settings: ask their Owner "
               "to apply it." if left else "")
        messages.success(request, f"Baseline saved{applied}.{own}")
        return redirect("agency:baseline", account_id=self.account.public_id)


