"""Trust Center → Data requests: the account's contact requests, asking for an export or an erasure (with its
confirmation), a person's own data, and downloading results. Views stay thin: ``trust.requests`` decides."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, ListView

from accounts.downloads import attachment_disposition
from accounts.forms import form_errors_from
from accounts.mixins import AccountViewMixin

from . import requests
from .models import DataRequest, DataRequestResult
from .request_forms import ContactRequestForm

CONTENT_TYPES = {
    DataRequestResult.Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DataRequestResult.Format.JSON: "application/json",
}


def requests_url(account):
    return reverse("trust:requests", kwargs={"account_id": account.public_id})


def my_data_url(account):
    return reverse("trust:my-data", kwargs={"account_id": account.public_id})


class RowsMixin:
    """Marks each listed request with whether the reader may download it (no query: the access is loaded)."""

    def mark(self, rows):
        rows = list(rows)
        for row in rows:
            row.downloadable = row.is_downloadable() and requests.may_download(self.access, self.request.user, row)
        return rows


class DataRequestListView(RowsMixin, AccountViewMixin, ListView):
    """The account's contact requests: In progress, then History (paginated), newest first."""

    permission_required = "view_trust_center"
    template_name = "trust/request_list.html"
    paginate_by = 25
    IN_PROGRESS_SHOWN = 50

    def base(self):
        return (DataRequest.objects.in_account(self.account).exclude(kind=DataRequest.Kind.MY_DATA)
                .select_related("requested_by"))

    def get_queryset(self):
        return self.base().finished()

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["object_list"] = self.mark(ctx["object_list"])
        ctx["in_progress"] = self.mark(self.base().in_progress()[: self.IN_PROGRESS_SHOWN])
        return ctx


class ContactRequestView(AccountViewMixin, FormView):
    """Ask for a contact export, or an erasure: the first POST shows what would be removed, the second (with
    ``confirm``) asks for exactly those contacts."""

    permission_required = "manage_trust_center"
    template_name = "trust/request_form.html"
    form_class = ContactRequestForm
    kind = DataRequest.Kind.CONTACT_EXPORT

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "has_subaccounts": self.account.numchild > 0}

    def get_context_data(self, **kwargs):
        return super().get_context_data(kind=self.kind, erasure=self.kind == DataRequest.Kind.CONTACT_ERASURE,
                                        **kwargs)

    def form_valid(self, form):
        subject = form.cleaned_data["subject"]
        include = bool(form.cleaned_data.get("include_subaccounts"))
        by = self.request.user
        try:
            if self.kind == DataRequest.Kind.CONTACT_EXPORT:
                data_request = requests.contact_export_request(account=self.account, by=by, subject=subject,
                                                               include_subaccounts=include, request=self.request)
            elif "confirm" not in self.request.POST:
                preview = requests.contact_preview(account=self.account, by=by, subject=subject,
                                                   include_subaccounts=include)
                return TemplateResponse(self.request, "trust/request_erasure_confirm.html",
                                        self.get_context_data(form=form, preview=preview))
            else:
                data_request = requests.contact_erasure_request(
                    account=self.account, by=by, subject=subject, include_subaccounts=include,
                    contact_ids=self.request.POST.getlist("contact_ids"), request=self.request)
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"{data_request.get_kind_display()} for {data_request.subject_masked} "
                                       "started. It is listed under In progress; you will get an email when it "
                                       "finishes.")
        return redirect(requests_url(self.account))


class MyDataView(RowsMixin, AccountViewMixin, ListView):
    """A person's own data: any member asks for it (POST) and finds their requests here."""

    template_name = "trust/request_my_data.html"
    paginate_by = 25

    def get_queryset(self):
        return (DataRequest.objects.in_account(self.account)
                .filter(kind=DataRequest.Kind.MY_DATA, requested_by=self.request.user))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["object_list"] = self.mark(ctx["object_list"])
        return ctx

    def post(self, request, *args, **kwargs):
        try:
            requests.my_data_request(account=self.account, by=request.user, request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Your data is being gathered. You will get an email when it is ready.")
        return redirect(my_data_url(self.account))


class DataRequestDownloadView(AccountViewMixin, View):
    """A finished request's file (``?format=xlsx`` or ``json``), checked against the reader on every download:
    another account's request is a 404; a reader who may not have it a 403; expired or unfinished a 404."""

    def get(self, request, *args, **kwargs):
        data_request = get_object_or_404(DataRequest.objects.in_account(self.account),
                                         public_id=kwargs["datarequest_id"])
        fmt = request.GET.get("format") or DataRequestResult.Format.XLSX
        result = requests.result_for(data_request=data_request, by=request.user, fmt=fmt)
        response = HttpResponse(bytes(result.content), content_type=CONTENT_TYPES[result.format])
        name = data_request.get_kind_display().lower().replace(" ", "-")
        response["Content-Disposition"] = attachment_disposition(
            f"{name}-{data_request.created_at:%Y%m%d}-{str(data_request.public_id)[:8]}.{result.format}")
        response["Cache-Control"] = "no-store"
        return response
