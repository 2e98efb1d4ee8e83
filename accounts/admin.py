import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Substr
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from agency.admin import AgencyGrantInline, AgencySettingsInline
from billing.admin import close_last_period as close_period_action
from billing.admin import start_transfer_action
from billing.models import Plan, Subscription
from billing.services import subscription_start
from members.admin import MembershipInline
from members.models import Membership
from members.roles import RoleId

from .admin_base import ReadOnlyAdminMixin, refusal_text
from .audit import audit, audit_actions
from .models import LIMIT_NAMES, Account, AccountHasSubaccounts, AuditEvent
from .paging import count_at_most
from .permissions import clean_matrix
from .services import (
    account_delete,
    account_rename,
    account_set_status,
    subaccount_create,
    subaccount_set_access,
    subaccount_set_defaults,
    subaccount_set_limits,
)

ROOT_STEP = Substr(OuterRef("path"), 1, Account.steplen)  # the row's root, as a path prefix


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows (``SELECT COUNT(*) FROM (... LIMIT cap + 1)``): the unfiltered list never
    counts every account (or audit event) on the platform. Past the cap the page says "More than 10000" (the
    accounts app's ``admin/accounts/pagination.html``) and search or filters narrow it."""

    cap = 10_000

    @cached_property
    def count(self):
        return count_at_most(self.object_list, self.cap)

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap


class DepthFilter(admin.SimpleListFilter):
    """Levels 1 to 5 without asking the database (a DISTINCT over every account would)."""

    title = "depth"
    parameter_name = "depth"

    def lookups(self, request, model_admin):
        return [(str(d), f"Level {d}") for d in range(1, settings.ACCOUNT_MAX_DEPTH + 1)]

    def queryset(self, request, queryset):
        return queryset.filter(depth=int(self.value())) if (self.value() or "").isdigit() else queryset


class BillingModeFilter(admin.SimpleListFilter):
    title = "billing mode"
    parameter_name = "billing"

    def lookups(self, request, model_admin):
        return [("direct", "Direct billing (root accounts)"), ("parent", "Parent billing (subaccounts)")]

    def queryset(self, request, queryset):
        return {"direct": queryset.filter(depth=1), "parent": queryset.filter(depth__gt=1)}.get(
            self.value(), queryset)


class PlanFilter(admin.SimpleListFilter):
    """The plan of the account's tree (its root's subscription), subaccounts included."""

    title = "plan"
    parameter_name = "plan"

    def lookups(self, request, model_admin):
        return list(Plan.objects.values_list("code", "name"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(Exists(Subscription.objects.filter(plan__code=self.value(), account__path=ROOT_STEP)))


LIMIT_FIELDS = tuple(f"limit_{n}" for n in LIMIT_NAMES)
DEFAULT_FIELDS = ("default_access_categories", *(f"default_limit_{n}" for n in LIMIT_NAMES))


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ("name", "parent", "access_categories", *LIMIT_FIELDS, *DEFAULT_FIELDS)

    def _clean_matrix_field(self, name):
        value = self.cleaned_data.get(name) or {}
        if not isinstance(value, dict):
            raise ValidationError('Give categories and levels, e.g. {"billing": "none", "agents": "read"}.')
        try:
            clean_matrix(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return value

    def clean_access_categories(self):
        return self._clean_matrix_field("access_categories")

    def clean_default_access_categories(self):
        return self._clean_matrix_field("default_access_categories")


class StatusForm(forms.Form):
    reason = forms.CharField(label="Reason (kept in the audit trail)", max_length=300, required=False,
                             widget=forms.TextInput(attrs={"size": 80, "autofocus": True}))




PROVISION_SESSION_KEY = "admin_provisioning"
PROVISION_SHOWN = 200
PROVISION_MAX_BYTES = 5 * 1024 * 1024
PROVISION_COLUMNS_HELP = (
    "external_id, id, name, parent (an account id, or the external_id of another row or an existing account), "
    "owner_email, owner_role, plan (top-level rows), limit_minutes, limit_concurrency, limit_agents, limit_members, "
    "access.<category> (none, read, full), agency (top-level rows: request agency access for this agency)")


class ProvisionForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .json file, UTF-8, at most 5 MB. It is checked first; nothing is "
                                     "written until you apply it.")
    update = forms.BooleanField(required=False, initial=True, label="Update existing accounts whose row changed",
                                help_text="Unticked: changed rows are only reported.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > PROVISION_MAX_BYTES:
            raise ValidationError("The file is larger than 5 MB: split it, or use the provision_accounts command.")
        return upload


@admin.register(Account)
class AccountAdmin(GuardedModelAdmin):
    """Platform staff's view of every account. Every write goes through ``accounts.services`` (and the
    billing and membership services), so the depth limit, sibling-unique names, caps (R1, R5), "never orphan
    subaccounts" and the audit trail hold here too.

    The list costs the same whatever the number of accounts: each row's owner, member count and plan are
    correlated subqueries on indexed columns (limited to the page's rows), the path's names are one query for
    the ancestors of the page's rows, and there is no COUNT of every account (``show_full_result_count``)."""

    form = AccountForm
    change_form_template = "admin/accounts/account/change_form.html"
    list_display = ("name", "breadcrumbs", "depth", "billing_mode", "plan", "status_and_action", "owner_email",
                    "member_count", "subaccounts")
    list_display_links = ("name",)
    list_filter = (DepthFilter, "status", PlanFilter, BillingModeFilter)
    search_fields = ("name", "=public_id", "=external_id")
    search_help_text = "Name, account ID, external ID or the owner's email address."
    ordering = ("path",)
    autocomplete_fields = ("parent",)
    show_full_result_count = False  # COUNT(*) over every account on every page view is wasted work
    paginator = CappedCountPaginator  # and the filtered count stops at 10,000
    list_per_page = 50
    inlines = [MembershipInline, AgencyGrantInline, AgencySettingsInline]
    actions = ["suspend_selected", "reactivate_selected", "export_selected", "start_billing_transfer",
               "close_last_period"]
    change_list_template = "admin/accounts/account/change_list.html"

    # The tree position, identity and status change only through services (buttons, actions, transfers).
    readonly_fields = ("public_id", "external_id", "status", "path_names", "depth", "numchild", "billing_summary",
                       "owner", "created_by", "created_at")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("name", "parent"),
                            "description": "A root account starts on the default plan with no Owner (add one "
                                           "under Memberships); a subaccount starts from its parent's defaults."})]
        limits_note = ("Set by the parent; blank takes the parent's current default." if obj.is_subaccount else
                       "A root account's own limits are not set by anyone above it: read only here.")
        return [
            (None, {"fields": ("name", "public_id", "external_id", "status", "path_names", "depth", "numchild",
                               "billing_summary", "owner", "created_by", "created_at")}),
            ("Access categories (set by the parent)", {"fields": ("access_categories",),
                                                       "classes": ("collapse",) if not obj.is_subaccount else ()}),
            ("Limits", {"fields": LIMIT_FIELDS, "description": limits_note}),
            ("Defaults for new subaccounts", {"fields": DEFAULT_FIELDS, "classes": ("collapse",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fields = [*self.readonly_fields, "parent"]
        if not obj.is_subaccount:  # the services set these only on subaccounts, from their parent
            fields += ["access_categories", *LIMIT_FIELDS]
        return fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    # --- the list ---------------------------------------------------------------------------------------

    def get_queryset(self, request):
        owners = (Membership.objects.filter(account=OuterRef("pk"), role=RoleId.OWNER)
                  .order_by("created_at", "pk").values("user__email")[:1])
        members = (Membership.objects.filter(account=OuterRef("pk")).order_by().values("account")
                   .annotate(n=Count("pk")).values("n"))
        plan = Subscription.objects.filter(account__path=ROOT_STEP).values("plan__name")[:1]
        return super().get_queryset(request).annotate(
            owner_email=Subquery(owners),
            member_count=Coalesce(Subquery(members, output_field=IntegerField()), Value(0)),
            plan_name=Subquery(plan),
        )

    def get_changelist_instance(self, request):
        """The page's rows, with their ancestors' names fetched in one query for all of them."""
        cl = super().get_changelist_instance(request)
        rows = list(cl.result_list)  # fills the queryset's cache: the template iterates the same rows
        attach_ancestor_names(rows)
        return cl

    def get_search_results(self, request, queryset, search_term):
        """Name, ids, and the owner's email (an exact address: one lookup on the unique email index)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        emails = [t.strip().lower() for t in search_term.split() if "@" in t]
        if emails:
            owned = Membership.objects.filter(account=OuterRef("pk"), role=RoleId.OWNER, user__email__in=emails)
            results = results | queryset.filter(Exists(owned))
        return results, may_have_duplicates

    @admin.display(description="path")
    def breadcrumbs(self, obj):
        return " › ".join(getattr(obj, "ancestor_names", ())) or "—"

    @admin.display(description="billing mode")
    def billing_mode(self, obj):
        return "parent" if obj.is_subaccount else "direct"

    @admin.display(description="plan")
    def plan(self, obj):
        name = getattr(obj, "plan_name", None) or "no plan"
        return f"{name} (parent billing)" if obj.is_subaccount else name

    @admin.display(description="status", ordering="status")
    def status_and_action(self, obj):
        url = reverse("admin:accounts_account_status", args=[obj.pk])
        verb = "Reactivate…" if obj.is_suspended else "Suspend…"
        return format_html('{} · <a href="{}">{}</a>', obj.get_status_display(), url, verb)

    @admin.display(description="owner")
    def owner_email(self, obj):
        return getattr(obj, "owner_email", None) or "—"

    @admin.display(description="members")
    def member_count(self, obj):
        return getattr(obj, "member_count", 0)

    @admin.display(description="subaccounts", ordering="numchild")
    def subaccounts(self, obj):
        return obj.numchild

    # --- the change page's read-only fields ----------------------------------------------------------

    @admin.display(description="path")
    def path_names(self, obj):
        attach_ancestor_names([obj])
        return " › ".join([*obj.ancestor_names, obj.name])

    @admin.display(description="billing")
    def billing_summary(self, obj):
        plan = getattr(obj, "plan_name", None) or "no plan"
        if obj.is_subaccount:
            return f"Parent billing (the tree's plan: {plan})"
        return f"Direct billing, {plan} plan"

    @admin.display(description="owner")
    def owner(self, obj):
        return getattr(obj, "owner_email", None) or "no Owner of its own"

    # --- writes, through the services -----------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:
            self._save_change(request, obj, form)
            return
        try:
            if obj.parent_id:
                created = subaccount_create(parent=obj.parent, name=obj.name, by=None, staff=request.user,
                                             request=request)
            else:
                # A root account created by staff has no owner yet; staff add one under Memberships.
                with transaction.atomic():
                    created = Account.objects.add_root(instance=Account(name=obj.name, created_by=request.user))
                    subscription_start(account=created)
                    audit(account=created, actor=request.user, request=request, action="account.created",
                          summary=f"Account “{obj.name}” created in the admin", staff=True)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        obj.pk, obj.path, obj.depth, obj.public_id = created.pk, created.path, created.depth, created.public_id

    def _save_change(self, request, obj, form):
        """Each changed group of fields goes to its service, all or nothing; a refusal is shown on the
        page and nothing is saved. A field counts as changed when the form says so (the JSON fields compare with
        their posted ``initial-`` values: what the page showed) and it differs from the stored row: a request
        without those values changes nothing it leaves as stored, and a page opened before someone else changed
        the access categories or defaults does not write them back when staff only rename."""
        try:
            with transaction.atomic():
                current = Account.objects.get(pk=obj.pk)
                changed = {name for name in form.changed_data if getattr(obj, name) != getattr(current, name)}
                if "name" in changed:
                    account_rename(account=current, name=obj.name, by=None, staff=request.user, request=request)
                if "access_categories" in changed:
                    subaccount_set_access(account=current, matrix=obj.access_categories, by=None,
                                          staff=request.user, request=request)
                if changed & set(LIMIT_FIELDS):
                    subaccount_set_limits(account=current, by=None, staff=request.user, request=request,
                                          limits={n: getattr(obj, f"limit_{n}") for n in LIMIT_NAMES})
                if changed & set(DEFAULT_FIELDS):
                    subaccount_set_defaults(account=current, matrix=obj.default_access_categories, by=None,
                                            limits={n: getattr(obj, f"default_limit_{n}") for n in LIMIT_NAMES},
                                            staff=request.user, request=request)
        except (ValidationError, PermissionDenied, ValueError) as exc:
            request._admin_refused = True
            self.message_user(request, f"Nothing was saved: {refusal_text(exc)}", messages.ERROR)

    def log_change(self, request, obj, message):
        if not getattr(request, "_admin_refused", False):
            return super().log_change(request, obj, message)

    def response_change(self, request, obj):
        if getattr(request, "_admin_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # What goes with an account (its audit trail, memberships, ...) is read only in the admin, yet goes with
        # it: ``account_delete`` decides, not those models' admin permissions. PROTECT still holds (usage).
        perms_needed = set()
        for account in objs:
            if account.numchild:
                protected.append(f"{account.name}: still has {account.numchild} subaccount(s)")
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        account_delete(account=obj, by=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for account in queryset.order_by("-depth"):
            try:
                account_delete(account=account, by=request.user, request=request)
            except AccountHasSubaccounts as exc:
                self.message_user(request, exc.messages[0], messages.ERROR)

    # --- suspend / reactivate: a button on each row and on the change page, and two actions -----------

    def get_urls(self):
        status = path("<path:object_id>/status/", self.admin_site.admin_view(self.status_view),
                      name="accounts_account_status")
        provision_page = path("provision/", self.admin_site.admin_view(self.provision_view),
                              name="accounts_account_provision")
        return [provision_page, status, *super().get_urls()]

    # --- provisioning: upload a file, see the dry run, then apply; export in the same format ------------

    @admin.action(description="Export selected accounts and everything below them (provisioning CSV)",
                  permissions=["view"])
    def export_selected(self, request, queryset):
        from django.db.models import Q

        from .downloads import attachment_disposition
        from .provisioning import export_rows, write_export

        subtree = Q()
        for top in queryset.only("path"):
            subtree |= Q(path__startswith=top.path)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = attachment_disposition("accounts.csv")
        write_export(export_rows(Account.objects.filter(subtree)), "csv", response)
        return response

    def provision_view(self, request):
        """Staff upload a CSV or JSON file: the first post checks it (a dry run, nothing written) and keeps the
        text in the session; "Apply" provisions exactly the text that was checked."""
        from .provisioning import ProvisioningConflict, detect_format, provision

        if not self.has_add_permission(request):
            raise PermissionDenied
        applying = request.method == "POST" and "apply" in request.POST
        form = ProvisionForm(request.POST, request.FILES) if request.method == "POST" and not applying else \
            ProvisionForm()
        report = token = None
        pending = request.session.get(PROVISION_SESSION_KEY)
        if applying:
            if not pending or request.POST.get("token") != pending["token"]:
                self.message_user(request, "That check is out of date: upload the file again.", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:accounts_account_provision"))
            try:
                report = provision(pending["text"], fmt=pending["format"], update=pending["update"],
                                   staff=request.user)
            except (ProvisioningConflict, ValidationError, PermissionDenied) as exc:
                self.message_user(request, refusal_text(exc), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:accounts_account_provision"))
            if report.ok:
                del request.session[PROVISION_SESSION_KEY]
                self.message_user(request, f"{pending['name']}: {report.summary()}", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_account_changelist"))
            # The tree changed since the check: show the new problems.
        elif form.is_bound and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                fmt = detect_format(upload.name)
                text = upload.read().decode("utf-8-sig")
            except ValueError as exc:  # an unknown extension, or not UTF-8 (UnicodeDecodeError is a ValueError)
                form.add_error("file", str(exc) if not isinstance(exc, UnicodeDecodeError)
                               else "The file is not UTF-8 text: save it as UTF-8 (CSV UTF-8 in spreadsheets).")
            else:
                update = form.cleaned_data["update"]
                report = provision(text, fmt=fmt, dry_run=True, update=update, staff=request.user)
                if report.ok:
                    token = uuid.uuid4().hex
                    request.session[PROVISION_SESSION_KEY] = {"token": token, "text": text, "format": fmt,
                                                              "update": update, "name": upload.name}
        context = {
            **self.admin_site.each_context(request),
            "title": "Provision accounts from a file",
            "opts": self.opts,
            "form": form,
            "report": report,
            "token": token,
            "shown": (report.outcomes[:PROVISION_SHOWN] if report else []),
            "problems": [report.describe(p) for p in report.problems[:PROVISION_SHOWN]] if report else [],
            "columns": PROVISION_COLUMNS_HELP,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/account/provision.html", context)

    def status_view(self, request, object_id):
        """One account: a confirmation page (with an optional reason), then ``account_set_status``."""
        account = get_object_or_404(self.get_queryset(request), pk=unquote(object_id))
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        suspend = not account.is_suspended
        return self._status_confirmation(request, [account], suspend, action_name=None)

    @admin.action(description="Suspend selected accounts…", permissions=["change"])
    def suspend_selected(self, request, queryset):
        return self._status_confirmation(request, list(queryset), True, action_name="suspend_selected")

    @admin.action(description="Reactivate selected accounts…", permissions=["change"])
    def reactivate_selected(self, request, queryset):
        return self._status_confirmation(request, list(queryset), False, action_name="reactivate_selected")

    def _status_confirmation(self, request, accounts, suspend, *, action_name):
        form = StatusForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = []
            for account in accounts:
                try:
                    account_set_status(account=account, suspended=suspend, staff=request.user,
                                       reason=form.cleaned_data["reason"], request=request)
                except (ValidationError, PermissionDenied) as exc:
                    self.message_user(request, f"{account.name}: {refusal_text(exc)}", messages.ERROR)
                else:
                    done.append(account.name)
            if done:
                verb = "suspended: their people reach nothing in them or below until reactivated" if suspend \
                    else "reactivated"
                self.message_user(request, f"{', '.join(done[:10])}{' and others' if len(done) > 10 else ''} "
                                           f"{verb}.", messages.SUCCESS)
            if action_name is None:
                return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[accounts[0].pk]))
            return None
        attach_ancestor_names(accounts)
        context = {
            **self.admin_site.each_context(request),
            "title": ("Suspend " if suspend else "Reactivate ") + (
                accounts[0].name if len(accounts) == 1 else f"{len(accounts)} accounts"),
            "opts": self.opts,
            "accounts": accounts,
            "suspend": suspend,
            "below": {a.pk: a.numchild for a in accounts},
            "form": form,
            "action_name": action_name,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/account/status.html", context)

    # --- billing actions (billing staff only) -------------------------------------------------------

    @admin.action(description="Close last month's billing period for the selected root accounts",
                  permissions=["close_period"])
    def close_last_period(self, request, queryset):
        close_period_action(self, request, queryset)

    @admin.action(description="Start a billing transfer…", permissions=["start_billing_transfer"])
    def start_billing_transfer(self, request, queryset):
        return start_transfer_action(self, request, queryset)

    def has_close_period_permission(self, request):
        return request.user.has_perm("billing.add_invoice")

    def has_start_billing_transfer_permission(self, request):
        return request.user.has_perm("billing.add_billingtransfer")

    # --- django-guardian's object-permission pages: read only ---------------------------------------

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._refuse_permission_writes(request)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._refuse_permission_writes(request)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    @staticmethod
    def _refuse_permission_writes(request):
        """Permission rows follow memberships, access categories and agency settings (``members.rows``):
        written here by hand they would bypass R1 and be overwritten by the next sync."""
        if request.method == "POST":
            raise PermissionDenied("Permission rows follow memberships: change the membership instead.")


def attach_ancestor_names(accounts) -> None:
    """Set ``ancestor_names`` (root first) on each account: one query for all of them, none when all are roots."""
    paths = {p for a in accounts for p in a.ancestor_paths}
    names = dict(Account.objects.filter(path__in=paths).values_list("path", "name")) if paths else {}
    for account in accounts:
        account.ancestor_names = [names.get(p, "?") for p in account.ancestor_paths]


class AuditActionFilter(admin.SimpleListFilter):
    """The actions written, found by a skip scan of their index (``audit_actions``): Django's filter on the field
    reads every event for them (one per recorded call)."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in audit_actions()]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """History: nobody adds, changes or deletes it. Filters that need no scan of the table to be offered: its
    actions by their index, dates as ranges (a date hierarchy lists the months that have events: a scan)."""

    list_display = ("created_at", "account", "actor_email", "action", "summary", "ip_address")
    list_filter = (AuditActionFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor_email", "summary", "=account__public_id")
    list_select_related = ("account",)
    show_full_result_count = False
    paginator = CappedCountPaginator  # a count that stops at 10,000 events (one is written per call)
