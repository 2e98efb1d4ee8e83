"""Trust Center → Data retention: what applies here and where it comes from, and this account's own rules."""

from functools import cached_property

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.generic import FormView

from accounts.mixins import AccountViewMixin

from .models import DataType
from .policy import effective_retention
from .retention import policy_update, preview
from .retention_forms import RetentionForm


class RetentionView(AccountViewMixin, FormView):
    """GET for those who view the Trust Center; saving needs Trust Center management. A change that shortens
    a period (here or in a subaccount that follows this account) first shows how many records the purge would
    remove now, and is saved only once confirmed."""

    template_name = "trust/retention.html"
    form_class = RetentionForm
    permission_required = "view_trust_center"

    @cached_property
    def effective(self):
        return effective_retention(self.account)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "effective": self.effective, "is_root": self.account.is_root()}

    def post(self, request, *args, **kwargs):
        if not self.access.has("manage_trust_center"):
            raise PermissionDenied("Your role can view but not change the data retention policy.")
        return super().post(request, *args, **kwargs)

    def source(self, account) -> str:
        """Who sets a value, said so the reader may read it (R6)."""
        if account is None:
            return "default"
        if account.pk == self.account.pk:
            return "this account"
        return account.name if self.access.reaches(account) else "an account above this one"

    def form_valid(self, form):
        choices = form.choices()
        if self.request.POST.get("confirm") != "yes":
            removals = preview(account=self.account, choices=choices)
            if removals:
                posted = [(k, v) for k in form.data if k not in ("csrfmiddlewaretoken", "confirm")
                          for v in form.data.getlist(k)]
                return TemplateResponse(self.request, "trust/retention_confirm.html",
                                        {"account": self.account, "removals": removals, "posted": posted})
        try:
            changes = policy_update(account=self.account, by=self.request.user, request=self.request,
                                    choices=choices)
        except ValidationError as exc:
            for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc)]:
                name = f"{field}_period" if field in DataType.values else None
                form.add_error(name, errors)
            return self.form_invalid(form)
        if changes:
            messages.success(self.request, "Data retention policy saved. The daily purge applies it.")
        else:
            messages.info(self.request, "Nothing changed.")
        return redirect("trust:retention", account_id=self.account.public_id)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        for row in ctx["form"].rows:
            row["source"] = self.source(row["rule"].source)
            row["locked_by"] = self.source(row["rule"].locked_by) if row["locked"] else ""
        ctx.update(may_edit=self.access.has("manage_trust_center"), is_root=self.account.is_root())
        return ctx
