"""Trust Center → Public trust page (settings), and the public page itself (no sign-in)."""

from functools import cached_property

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe
from django.views.generic import FormView

from accounts.mixins import AccountViewMixin

from .models import PublicTrustPage
from .public import current_slug, page_save, public_answer, random_slug
from .public_forms import PublicPageForm


class PublicPageSettingsView(AccountViewMixin, FormView):
    """GET for those who view the Trust Center; saving needs Trust Center management. "Generate a random
    address" fills the form with one without saving."""

    template_name = "trust/public_settings.html"
    form_class = PublicPageForm
    permission_required = "view_trust_center"

    @cached_property
    def page(self) -> PublicTrustPage | None:
        return PublicTrustPage.objects.filter(account=self.account).first()

    @cached_property
    def slug(self):
        return current_slug(self.page)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = self.page
        return kwargs

    def get_initial(self):
        return {"slug": self.slug.slug if self.slug else random_slug(),
                "company_name": "" if self.page else self.account.name}

    def post(self, request, *args, **kwargs):
        if not self.access.has("manage_trust_center"):
            raise PermissionDenied("Your role can view but not change the public trust page.")
        if "random" in request.POST:
            form = self.get_form()
            form.is_valid()
            data = form.data.copy()
            data["slug"] = random_slug()
            return self.render_to_response(self.get_context_data(form=self.form_class(data, instance=self.page)))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            page_save(account=self.account, by=self.request.user, request=self.request,
                      slug=form.cleaned_data["slug"], **form.page_fields())
        except ValidationError as exc:
            for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc)]:
                form.add_error(field if field in form.fields else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, "Public trust page saved.")
        return redirect("trust:public-settings", account_id=self.account.public_id)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        url = (self.request.build_absolute_uri(reverse("trust:public-page", kwargs={"slug": self.slug.slug}))
               if self.slug else "")
        retired = list(self.page.slugs.filter(retired_at__isnull=False).order_by("-retired_at")[:5]) \
            if self.page else []
        ctx.update(page=self.page, public_url=url, retired=retired, may_edit=self.access.has("manage_trust_center"),
                   grace_days=settings.TRUST_SLUG_GRACE_DAYS)
        return ctx


@require_safe
def public_page(request, slug):
    """An account's published trust page. No sign-in, no session, nothing of the visitor read; served from the
    cache, with Last-Modified (a conditional GET gets 304). A previous address redirects during its grace
    period; an unknown, unpublished or suspended one is a 404 that says nothing more."""
    answer = public_answer(slug)
    if answer.missing:
        raise Http404("No public trust page at this address.")
    if answer.redirect_to:
        return HttpResponseRedirect(reverse("trust:public-page", kwargs={"slug": answer.redirect_to}))
    last_modified = int(answer.last_modified)
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    response = (HttpResponseNotModified() if since is not None and since >= last_modified
                else HttpResponse(answer.body))
    response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = f"public, max-age={settings.TRUST_PAGE_CACHE_SECONDS}"
    return response
