"""Billing transfer pages: the parent's wizard and cancel button, and the customer's acceptance link."""

import copy

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.generic import View
from formtools.wizard.views import SessionWizardView

from accounts.subaccount_views import SubaccountMixin
from members.models import Membership, User

from . import transfers
from .forms import AcceptForm, AcceptSignupForm, AccessStep, OwnerStep, PlanStep, ReviewStep
from .models import BillingTransfer, period_start
from .stripe_sync import BillingProviderError


def _text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


class TransferMixin(SubaccountMixin):
    tab = "billing"

    def billing_tab(self):
        return self.sub_url("billing")


class TransferWizardView(TransferMixin, SessionWizardView):
    """Four steps; back and forward keep what was entered (the session stores each step's data)."""

    form_list = [("owner", OwnerStep), ("plan", PlanStep), ("access", AccessStep), ("review", ReviewStep)]
    template_name = "billing/transfer_wizard.html"

    def check_permission(self):
        super().check_permission()
        permission = transfers.transfer_permission_refusal(self.get_sub(), self.request.user)
        if permission:
            raise PermissionDenied(permission)
        self.refusal = transfers.transfer_refusal(self.get_sub(), self.request.user)

    def get(self, request, *args, **kwargs):
        if self.refusal:
            messages.error(request, self.refusal)
            return redirect(self.billing_tab())
        # Opening the first step resets the wizard (formtools marks the session changed whenever it reads the
        # wizard's state): when the session already held exactly that fresh state (a reload), nothing is written.
        before, was_modified = copy.deepcopy(request.session.get(self.storage.prefix)), request.session.modified
        response = super().get(request, *args, **kwargs)

        def unchanged(_response):  # after the page is drawn (drawing reads the state too)
            if request.session.get(self.storage.prefix) == before:
                request.session.modified = False

        if not was_modified and before is not None:
            if hasattr(response, "add_post_render_callback"):
                response.add_post_render_callback(unchanged)
            else:
                unchanged(response)
        return response

    def post(self, request, *args, **kwargs):
        if self.refusal:
            messages.error(request, self.refusal)
            return redirect(self.billing_tab())
        return super().post(request, *args, **kwargs)

    def get_prefix(self, request, *args, **kwargs):
        return f"transfer_{kwargs['sub_id']}"  # one wizard per subaccount, even in several tabs

    def get_form_kwargs(self, step=None):
        sub = self.get_sub()
        if step == "owner":
            return {"people": list(transfers.billing_owner_candidates(sub))}
        if step == "plan":
            return {"account": sub}
        if step == "access":
            return {"people": list(transfers.agency_candidates(sub))}
        return {}

    def summary(self):
        data = self.get_all_cleaned_data()
        sub = self.get_sub()
        access = self.get_form(step="access", data=self.storage.get_step_data("access"))
        keep, people, expires = access.chosen() if access.is_valid() else (False, [], None)
        return {"email": data.get("email"), "plan": data.get("plan"), "cutover": data.get("cutover"),
                "keep": keep, "people": people, "expires": expires, "below": sub.descendants().count(),
                "leaving": _leaving(sub, data.get("email") or ""),
                "period": period_start(), "payer": self.access.reaches(sub.parent) and sub.parent}

    def get_context_data(self, form, **kwargs):
        ctx = super().get_context_data(form=form, **kwargs)
        if self.steps.current == "review":
            ctx["summary"] = self.summary()
        return ctx

    def done(self, form_list, **kwargs):
        summary = self.summary()
        try:
            transfer = transfers.transfer_start(
                account=self.get_sub(), by=self.request.user, billing_owner_email=summary["email"],
                plan=summary["plan"], cutover=summary["cutover"], keep_agency_access=summary["keep"],
                agency_people=summary["people"], agency_expires_at=summary["expires"], request=self.request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(self.request, _text(exc))
            return redirect(self.billing_tab())
        messages.success(self.request, f"Transfer proposed. {transfer.billing_owner_email} got a link to review and "
                                       "accept it; nothing changes until then.")
        return redirect(self.billing_tab())


class TransferCancelView(TransferMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        transfer = get_object_or_404(BillingTransfer, account=self.get_sub(), public_id=kwargs["transfer_id"])
        try:
            transfers.transfer_cancel(transfer=transfer, by=request.user, request=request)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _text(exc))
        else:
            messages.success(request, "The billing transfer was cancelled; its link no longer works.")
        return redirect(self.billing_tab())


def _leaving(account, billing_owner_email: str, shown: int = 20) -> dict:
    """The provider's people whose memberships in the subtree end at the switch: how many, and the first ones."""
    found = transfers.provider_memberships(account, billing_owner_email)
    first = list(found[:shown])
    return {"shown": first, "more": found.count() - len(first) if len(first) == shown else 0}


def transfer_accept(request, token):
    """The link in the billing owner's email: review, give billing details, accept or decline."""
    try:
        transfer = transfers.transfer_from_token(token)
    except transfers.TransferInvalid as exc:
        return render(request, "billing/transfer_invalid.html", {"reason": str(exc)}, status=410)
    user = request.user if request.user.is_authenticated else None
    existing = User.objects.filter(email__iexact=transfer.billing_owner_email).first()
    leaving = _leaving(transfer.account, transfer.billing_owner_email)
    ctx = {"transfer": transfer, "below": transfer.account.descendants().count(), "leaving": leaving,
           # who keeps access whatever is chosen: the account's own people (shown so nobody is a surprise)
           "own_people": list(Membership.objects.filter(account=transfer.account, is_agency=False)
                              .exclude(pk__in=transfers.provider_memberships(
                                  transfer.account, transfer.billing_owner_email).values("pk"))
                              .select_related("user").order_by("user__email")[:50])}
    if user is None and existing is not None:
        return redirect(f"{reverse('login')}?next={request.path}")
    if user is not None and user.email.lower() != transfer.billing_owner_email:
        ctx["wrong_user"] = True
        return render(request, "billing/transfer_accept.html", ctx, status=403)
    form_class = AcceptForm if user is not None else AcceptSignupForm
    kwargs = {} if user is not None else {"email": transfer.billing_owner_email}
    initial = {"contact_email": transfer.billing_owner_email, "contact_name": user.display_name if user else ""}
    decision = request.POST.get("decision")
    form = form_class(request.POST if decision == "accept" else None, initial=initial, **kwargs)
    ctx["form"] = form
    if request.method == "POST" and decision == "decline":
        try:
            transfers.transfer_decline(transfer=transfer, user=user, request=request)
        except ValidationError as exc:
            return render(request, "billing/transfer_invalid.html", {"reason": _text(exc)}, status=409)
        return render(request, "billing/transfer_invalid.html", {
            "title": "Transfer declined",
            "reason": f"You declined the billing transfer of {transfer.account.name}. Nothing changed."})
    if request.method == "POST" and decision == "accept" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():  # a new person and their acceptance land together, or neither does
                if user is None:
                    if User.objects.filter(email__iexact=transfer.billing_owner_email).exists():
                        raise ValidationError("An account with this email already exists: sign in to continue.")
                    user = User.objects.create_user(email=transfer.billing_owner_email, password=data["password"],
                                                    name=data["name"], email_verified=True)
                transfer = transfers.transfer_accept(transfer=transfer, user=user, contact_name=data["contact_name"],
                                                     contact_email=data["contact_email"], request=request)
        except (ValidationError, BillingProviderError) as exc:
            return render(request, "billing/transfer_invalid.html", {"reason": _text(exc)}, status=409)
        if not request.user.is_authenticated:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if transfer.status == BillingTransfer.Status.COMPLETED:
            request.session["last_account"] = str(transfer.account.public_id)
            messages.success(request, f"{transfer.account.name} is now independent and billed directly to you.")
            return redirect(reverse("billing:overview", kwargs={"account_id": transfer.account.public_id}))
        messages.success(request, f"Accepted. {transfer.account.name} becomes independent, owned by you, on "
                                  f"{transfer.cutover_at:%Y-%m-%d}; until then its usage stays on the current invoice.")
        return redirect("home")
    return render(request, "billing/transfer_accept.html", ctx)

