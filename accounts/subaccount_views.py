"""The parent's pages for running its subaccounts: the table, the detail tabs, defaults, suspension."""

import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import FormView, ListView, TemplateView

from billing.selectors import minutes_used_in_subtrees
from members.grants import assignable_roles, matrix_ceiling
from members.models import Membership
from members.rows import composed_categories, own_categories

from .access import resolve_access
from .audit import audit_actions, platform_via
from .baked import Baked
from .dashboard import LimitMeter
from .forms import AccessMatrixForm, AuditFilterForm, LimitsForm, MoveForm, SubaccountCreateForm, SuspendForm
from .mixins import AccountViewMixin
from .models import Account, AuditEvent, NotConversationEvent
from .params import search_text, uuid_or_404
from .permissions import CATEGORIES, Level
from .selectors import SubaccountRows, count_below, descendant_or_404, figures_of
from .services import (
    account_switched,
    subaccount_create,
    subaccount_move,
    subaccount_refusal,
    subaccount_set_access,
    subaccount_set_defaults,
    subaccount_set_limits,
    subaccount_set_status,
    subtree_height,
)
from .sorting import Column, Sorting

SUBACCOUNT_SORTS = Sorting(
    Column("name"),
    Column("members", "members_count", "name", descending_first=True),
    Column("agents", "agents_count", "name", descending_first=True),
    Column("minutes", "minutes_used", "name", descending_first=True),
    Column("created", "created_at", descending_first=True),
    default="name",
)


class SubaccountListView(AccountViewMixin, ListView):
    """Settings → Subaccounts: direct subaccounts (nested ones expand in place), searchable over the whole subtree."""

    permission_required = "view_subaccounts"
    paginate_by = 25

    def get_template_names(self):
        if self.request.htmx and self.request.GET.get("under"):
            return ["accounts/_subaccount_rows.html"]
        return ["accounts/subaccount_list.html"]

    def get_queryset(self):
        self.q = search_text(self.request.GET)
        self.sort = SUBACCOUNT_SORTS.parse(self.request.GET)
        under = self.request.GET.get("under")
        self.under = descendant_or_404(self.account, uuid_or_404(under)) if under else None
        # figures (members, agents, minutes) are computed for the page's rows only
        if self.q:
            rows = SubaccountRows(self.account, order=self.sort.order_by, text=self.q, subtree=True)
        else:
            rows = SubaccountRows(self.under or self.account, order=self.sort.order_by)
        return rows.expect(self.request.GET.get(self.page_kwarg, 1), self.paginate_by)

    def get_paginate_by(self, queryset):
        return None if self.request.htmx and self.under else self.paginate_by

    def get_context_data(self, **kwargs):
        if self.get_paginate_by(self.object_list) is None:  # nested rows expanding in place: one account's children
            self.object_list = list(self.object_list)
        ctx = super().get_context_data(**kwargs)
        refusal = subaccount_refusal(self.account, self.request.user, shown=True)
        ctx.update(q=self.q, sort=self.sort, under=self.under, refusal=refusal, depth_offset=-self.account.depth,
                   extra_query=self.sort.extra_query)
        return ctx


class SubaccountCreateView(AccountViewMixin, FormView):
    permission_required = "view_subaccounts"
    template_name = "accounts/subaccount_create.html"
    form_class = SubaccountCreateForm

    def get_form_kwargs(self):
        roles = assignable_roles(self.access) if self.access.has("manage_members") else []
        return {**super().get_form_kwargs(), "parent": self.account, "roles": roles}

    def get_context_data(self, **kwargs):
        return super().get_context_data(refusal=subaccount_refusal(self.account, self.request.user, shown=True),
                                        **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            sub = subaccount_create(parent=self.account, name=data["name"], by=self.request.user,
                                    invite_email=data.get("invite_email") or "",
                                    invite_role=data.get("invite_role") or "owner", request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return self.form_invalid(form)
        account_switched(user=self.request.user, to=sub, request=self.request)
        invited = f" {data['invite_email']} is invited to run it." if data.get("invite_email") else ""
        messages.success(self.request, f"Created subaccount {sub.name} under {self.account.name}; you manage it "
                                       f"through {self.account.name} and are now working in it.{invited}")
        return redirect(sub)


class SubaccountMixin(AccountViewMixin):
    """A subaccount of the URL's account (any depth below it), with the tabs' shared context."""

    permission_required = "view_subaccounts"
    tab = "overview"

    def dispatch(self, request, *args, **kwargs):
        self.sub = None
        return super().dispatch(request, *args, **kwargs)

    def get_sub(self):
        if self.sub is None:
            self.sub = descendant_or_404(self.account, self.kwargs["sub_id"])
        return self.sub

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(sub=self.get_sub(), tab=self.tab)
        return ctx

    def require_manage(self):
        if not self.access.has("manage_subaccounts"):
            raise PermissionDenied(f"Your role in {self.account.name} does not allow managing subaccounts.")

    def sub_url(self, name):
        return reverse(f"accounts:subaccount-{name}",
                       kwargs={"account_id": self.account.public_id, "sub_id": self.get_sub().public_id})


class SubaccountOverviewView(SubaccountMixin, TemplateView):
    template_name = "accounts/subaccount_overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sub = self.get_sub()
        ctx["row"] = figures_of(sub)
        ctx["all_below"] = count_below(sub)
        ctx["plan"] = self.access.plan  # the same root as the URL's account
        return ctx


class SubaccountMembersView(SubaccountMixin, ListView):
    tab = "members"
    template_name = "accounts/subaccount_members.html"
    paginate_by = 50

    def get_queryset(self):
        return Membership.objects.filter(account=self.get_sub()).select_related("user").order_by("user__email")


class SubaccountPermissionsView(SubaccountMixin, FormView):
    """The categories the subaccount's own members may use, set by the parent (rule 2), never above the
    parent's own (rule 7); shows which level comes from which ancestor."""

    tab = "permissions"
    template_name = "accounts/subaccount_permissions.html"
    form_class = AccessMatrixForm

    def granter_access(self):
        return resolve_access(self.request.user, self.get_sub().parent)

    def get_form_kwargs(self):
        parent = self.get_sub().parent
        granter = self.granter_access()  # None: the viewer does not reach the parent (an agency user), gives nothing
        ceiling = (matrix_ceiling(granter, composed_categories(parent)) if granter is not None
                   else {c.key: Level.NONE for c in CATEGORIES})
        return {**super().get_form_kwargs(), "current": self.get_sub().access_categories, "ceiling": ceiling}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sub = self.get_sub()
        lineage = [*Account.objects.filter(path__in=sub.ancestor_paths[1:]).order_by("depth"), sub]
        reachable = {a.pk for a in lineage if a.path.startswith(self.account.path)}
        sources = []
        for category in CATEGORIES:
            level, source = category.top, None
            for account in lineage:
                own = own_categories(account).get(category.key)
                if own is not None and own <= level:
                    level, source = own, account
            # R6: an ancestor the reader cannot reach is not named.
            sources.append((category, level, source if source is None or source.pk in reachable else "above"))
        ctx["sources"] = sources
        return ctx

    def post(self, request, *args, **kwargs):
        self.require_manage()
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            subaccount_set_access(account=self.get_sub(), matrix=form.matrix, by=self.request.user,
                                  request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return self.form_invalid(form)
        messages.success(self.request, f"Access categories of {self.sub.name} saved; its members' access changed "
                                       "at once, and so did that of the subaccounts below it.")
        return redirect(self.sub_url("permissions"))


class SubaccountLimitsView(SubaccountMixin, FormView):
    tab = "limits"
    template_name = "accounts/subaccount_limits.html"
    form_class = LimitsForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "initial": self.get_sub().limits(),
                "parent_defaults": self.get_sub().parent.default_limits()}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sub = self.get_sub()
        # one query for all three; minutes from the usage rollup (the subtree's, this period), never raw usage
        row = figures_of(sub)
        ctx["usage"] = {"minutes": row.minutes_used, "agents": row.agents_count, "members": row.members_count}
        departed = row.minutes_departed if sub.limit_minutes is not None else 0
        ctx["meters"] = [
            # its pool still counts what subaccounts used here this period before they left
            LimitMeter(row.minutes_used + departed, sub.limit_minutes, "Minutes this period",
                       "new conversations here are blocked until the next period",
                       f"{departed} of them by subaccounts that left this period" if departed else ""),
            LimitMeter(row.agents_count, sub.limit_agents, "Agents", "no more agents can be created"),
            LimitMeter(row.members_count, sub.limit_members, "Members", "no one else can be added or invited"),
        ]
        return ctx

    def post(self, request, *args, **kwargs):
        self.require_manage()
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            subaccount_set_limits(account=self.get_sub(), limits=form.limits, by=self.request.user,
                                  request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return self.form_invalid(form)
        messages.success(self.request, f"Limits of {self.sub.name} saved.")
        return redirect(self.sub_url("limits"))


def _recent_transfers_query(account_id):
    from billing.models import BillingTransfer

    return (BillingTransfer.objects.filter(account_id=account_id).select_related("created_by", "decided_by", "plan")
            .order_by("-created_at")[:10])


_recent_transfers = Baked(_recent_transfers_query)


class SubaccountBillingView(SubaccountMixin, TemplateView):
    tab = "billing"
    template_name = "accounts/subaccount_billing.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sub = self.get_sub()
        ctx["plan"] = self.access.plan  # the same root as the URL's account
        # the payer is the tree's root: the person's lineage has it (no query)
        ctx["payer"] = next(a for a in (*self.access.ancestors, self.account) if a.path == sub.root_path)
        ctx["payer_visible"] = self.access.reaches(ctx["payer"])  # R6
        from billing.transfers import transfer_refusal

        ctx["transfers"] = _recent_transfers(sub.pk)
        ctx["open_transfer"] = next((t for t in ctx["transfers"] if t.is_open), None)
        ctx["transfer_refusal"] = transfer_refusal(sub, self.request.user)
        ctx["minutes_subtree"] = minutes_used_in_subtrees([sub])[sub.pk]
        return ctx


class SubaccountStatusView(SubaccountMixin, FormView):
    """Suspend (with confirmation) or reactivate a subaccount."""

    tab = "overview"
    template_name = "accounts/subaccount_status.html"
    form_class = SuspendForm
    permission_required = "manage_subaccounts"

    def post(self, request, *args, **kwargs):
        sub = self.get_sub()
        if sub.is_suspended:
            subaccount_set_status(account=sub, suspended=False, by=request.user, request=request)
            messages.success(request, f"{sub.name} is active again.")
            return redirect(self.sub_url("overview"))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        subaccount_set_status(account=self.get_sub(), suspended=True, by=self.request.user, request=self.request)
        messages.warning(self.request, f"{self.sub.name} is suspended: its members can sign in but see nothing "
                                       "until you reactivate it.")
        return redirect(self.sub_url("overview"))


class SubaccountMoveView(SubaccountMixin, FormView):
    """Move a subaccount and its subtree under another account of this tree (same root; depth allowing)."""

    tab = "overview"
    template_name = "accounts/subaccount_move.html"
    form_class = MoveForm
    permission_required = "manage_subaccounts"
    MAX_CANDIDATES = 500

    def candidates(self):
        sub = self.get_sub()
        room = settings.ACCOUNT_MAX_DEPTH - subtree_height(sub) + 1  # the deepest a new parent may be, plus one
        qs = (Account.objects.filter(path__startswith=self.account.path, depth__lt=room)
              .exclude(path__startswith=sub.path).exclude(pk=sub.parent_id).order_by("path"))
        return list(qs[: self.MAX_CANDIDATES])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "candidates": self.candidates()}

    def form_valid(self, form):
        try:
            subaccount_move(account=self.get_sub(), new_parent=form.target, by=self.request.user,
                            request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
            return self.form_invalid(form)
        messages.success(self.request, f"{self.sub.name} is now under {form.target.name}; its caps and minutes "
                                       "pools apply at once.")
        return redirect(self.sub_url("overview"))


class SubaccountDefaultsView(AccountViewMixin, TemplateView):
    """What new subaccounts of this account start with. Existing subaccounts keep theirs."""

    permission_required = ("view_subaccounts", "manage_subaccounts")
    template_name = "accounts/subaccount_defaults.html"

    def forms(self, data=None):
        matrix = AccessMatrixForm(data, prefix="access", current=self.account.default_access_categories,
                                  ceiling=matrix_ceiling(self.access, composed_categories(self.account)))
        limits = LimitsForm(data, prefix="limits", initial=self.account.default_limits())
        return matrix, limits

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if "matrix_form" not in kwargs:
            ctx["matrix_form"], ctx["limits_form"] = self.forms()
        return ctx

    def post(self, request, *args, **kwargs):
        matrix_form, limits_form = self.forms(request.POST)
        if matrix_form.is_valid() and limits_form.is_valid():
            try:
                subaccount_set_defaults(account=self.account, matrix=matrix_form.matrix, limits=limits_form.limits,
                                        by=request.user, request=request)
            except (ValidationError, PermissionDenied) as exc:
                matrix_form.add_error(None, " ".join(getattr(exc, "messages", None) or [str(exc)]))
                return self.render_to_response(self.get_context_data(matrix_form=matrix_form,
                                                                     limits_form=limits_form))
            messages.success(request, "Defaults saved. They apply to subaccounts created from now on; existing "
                                      "subaccounts keep their own settings.")
            return redirect("accounts:subaccount-defaults", account_id=self.account.public_id)
        return self.render_to_response(self.get_context_data(matrix_form=matrix_form, limits_form=limits_form))


_EVENT_FIELDS = [f.name for f in AuditEvent._meta.concrete_fields]


def _audit_query(account_id, path, actor, action, since, until, *, subtree, by_actor, by_action, conversations,
                 by_since, by_until):
    # the rows name their account and nothing more of it: its other columns (JSON among them) are not read
    qs = AuditEvent.objects.select_related("account").only(*_EVENT_FIELDS, "account__name")
    qs = qs.filter(account__path__startswith=path) if subtree else qs.filter(account_id=account_id)
    if by_actor:
        qs = qs.filter(actor_email__icontains=actor)
    if by_action:
        qs = qs.filter(action=action)
    elif not conversations:  # every call writes one: hidden unless asked for (or filtered on)
        qs = qs.filter(NotConversationEvent())
    if by_since:
        qs = qs.filter(created_at__gte=since)
    if by_until:
        qs = qs.filter(created_at__lt=until)
    return qs.order_by(F("created_at").desc(), "-pk")


# The Audit page's rows: compiled once per combination of filters (``accounts.baked``). With the subaccounts the
# best plan depends on the subtree's size (a few accounts: each one's newest events; thousands: the newest events
# of all, kept when in the subtree), so PostgreSQL plans that query for its values each time.
_audit_events = Baked(_audit_query)
_audit_events_below = Baked(_audit_query, prepare=False)
# The newest this many events that match are listed (and downloaded): the count stops there.
AUDIT_MAX_ROWS = 10_000


class AuditLogView(AccountViewMixin, ListView):
    """Who did what here (and, on request, in the subaccounts below)."""

    permission_required = "view_audit_log"
    template_name = "accounts/audit_log.html"

    def check_permission(self):
        if not self.access.may_read_audit:  # R7: the Owner always may, whatever the agency settings say
            super().check_permission()
    paginate_by = 50

    def get_queryset(self):
        self.filter_form = AuditFilterForm(self.request.GET or None, actions=audit_actions(self.account.pk))
        data = self.filter_form.cleaned_data if self.filter_form.is_valid() else {}
        tz = timezone.get_current_timezone()  # the reader's (profile), so "from the 3rd" means their 3rd
        since = until = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # (unused unless asked for)
        if data.get("since"):
            since = datetime.datetime.combine(data["since"], datetime.time(), tzinfo=tz)
        if data.get("until"):
            until = datetime.datetime.combine(data["until"] + datetime.timedelta(days=1), datetime.time(), tzinfo=tz)
        actor, action = (data.get("actor") or "")[:254], data.get("action") or ""
        subtree = bool(data.get("include_subaccounts"))
        return (_audit_events_below if subtree else _audit_events).pages(
            self.account.pk, self.account.path, actor, action, since, until,
            subtree=subtree, by_actor=bool(actor), by_action=bool(action),
            conversations=bool(data.get("conversations")), by_since=bool(data.get("since")),
            by_until=bool(data.get("until"))).at_most(AUDIT_MAX_ROWS)

    def render_to_response(self, context, **kwargs):
        if self.request.GET.get("format") == "csv":
            from .downloads import csv_download

            rows = [["When (UTC)", "Who", "Via", "Action", "What", "Account", "IP"]]
            for e in self.object_list[:AUDIT_MAX_ROWS]:
                via = (e.data.get("via_agency") if isinstance(e.data, dict) else None) or platform_via(e.data)
                rows.append([e.created_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                             e.actor_email or "system", via, e.action, e.summary, e.account.name,
                             e.ip_address or ""])
            return csv_download(f"audit-{self.account.name}.csv", rows)
        return super().render_to_response(context, **kwargs)

    def get_context_data(self, **kwargs):
        query = self.request.GET.copy()
        query.pop("page", None)
        query.pop("format", None)
        context = super().get_context_data(filter_form=self.filter_form, max_rows=AUDIT_MAX_ROWS,
                                           extra_query=(query.urlencode() + "&") if query else "", **kwargs)
        context["more_than_max"] = self.object_list.more  # known once the paginator has counted
        return context


