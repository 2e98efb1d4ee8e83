"""List, detail, create, edit and delete pages for the account's agents, contacts and conversations.

One set of views, parameterized per kind (``Kind``): every query starts from the current
account (``Model.objects.in_account``), so another tenant's id is a 404.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import DetailView, FormView, ListView, TemplateView

from accounts.forms import form_errors_from
from accounts.mixins import AccountViewMixin
from accounts.paging import AtMostPaginator, Paginator
from accounts.params import search_text, uuid_or_404
from accounts.sorting import Column, Sorting

from . import forms, services
from .models import Agent, Contact, Conversation


@dataclass(frozen=True)
class Kind:
    key: str  # URL and template prefix: "agent"
    plural: str
    model: Any
    category: str  # permission category: view_<c>, manage_<c>, delete_<c>
    form: Any
    create: Any
    update: Any
    delete: Any
    search: tuple[str, ...]
    sorts: Sorting
    edit_form: Any = None

    def url(self, name, account, obj=None):
        kwargs = {"account_id": account.public_id}
        if obj is not None:
            kwargs["pk"] = obj.public_id
        return reverse(f"workspace:{self.key}-{name}", kwargs=kwargs)


AGENTS = Kind("agent", "agents", Agent, "agents", forms.AgentForm, services.agent_create, services.agent_update,
              services.agent_delete, ("name", "description"),
              Sorting(Column("name"), Column("status", "status", "name"),
                      Column("conversations", "conversation_count", "name", descending_first=True),
                      Column("created", "created_at", descending_first=True), default="name"))
CONTACTS = Kind("contact", "contacts", Contact, "contacts", forms.ContactForm, services.contact_create,
                services.contact_update, services.contact_delete, ("name", "phone", "email"),
                Sorting(Column("name"), Column("email", "email", "name"),
                        Column("added", "created_at", descending_first=True), default="name"))
# No order by agent: it would sort every call of a busy account by a joined name. ``?agent=`` (the Agents page
# links each agent's count to it) lists one agent's calls from their own index instead.
CONVERSATIONS = Kind("conversation", "conversations", Conversation, "conversations", forms.ConversationForm,
                     None, services.conversation_update, services.conversation_delete,
                     ("agent__name", "contact__name", "contact__phone"),  # conversations_matching()
                     Sorting(Column("started", "started_at", descending_first=True),
                             Column("minutes", "duration_seconds", "-started_at", descending_first=True),
                             default="-started"),
                     edit_form=forms.ConversationEditForm)


def containing(q: str, fields) -> Q:
    """The rows where one of ``fields`` contains ``q``, whatever the case."""
    match = Q()
    for name in fields:
        match |= Q(**{f"{name}__icontains": q})
    return match


# Past this many matching contacts (or agents) the search says which by a subquery instead: so many match that
# the newest calls hold the first page's, and the scan by start that finds them stops early.
MATCHES_LISTED = 5_000


def conversations_matching(account, q: str, *, summaries: bool = False) -> Q:
    """The conversations whose contact (name, phone) or agent (name) contains ``q``, or with ``summaries`` their
    summary too. The contacts and agents are looked up first, so the calls are found by their contact's or agent's
    index rather than by reading every call of the account and its joins."""
    found = Q()
    for model, field, fields in ((Contact, "contact", ("name", "phone")), (Agent, "agent", ("name",))):
        ids = model.objects.in_account(account).filter(containing(q, fields)).values_list("pk", flat=True)
        listed = list(ids[: MATCHES_LISTED + 1])
        if listed:
            found |= Q(**{f"{field}__in": listed if len(listed) <= MATCHES_LISTED else ids})
    if summaries:
        found |= Q(summary__icontains=q)
    return found if found else Q(pk__in=[])


class KindMixin(AccountViewMixin):
    kind: Kind = None  # set per URL: as_view(kind=AGENTS)
    action = "view"

    def get_permission_required(self):
        return (f"{self.action}_{self.kind.category}",)

    def scoped(self):
        return self.kind.model.objects.in_account(self.account)

    def get_object(self, queryset=None):
        return get_object_or_404(self.scoped(), public_id=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["kind"] = self.kind
        return ctx

    def form_errors_from(self, form, exc: ValidationError):
        form_errors_from(form, exc)
        return self.form_invalid(form)


class ScopedListView(KindMixin, ListView):
    paginate_by = 25
    agent = None  # the conversations' ``?agent=`` filter

    def get_paginator(self, queryset, per_page, **kwargs):
        """A busy account has hundreds of thousands of calls: their count stops at the rows offered. Agents and
        contacts, far fewer, are counted and paged to the end."""
        paginator = AtMostPaginator if self.kind is CONVERSATIONS else Paginator
        return paginator(queryset, per_page, **kwargs)

    @property
    def summaries(self) -> bool:
        """Whether the conversations' search reads their summaries too (``?summaries=1``): every call of the
        account, so only when asked."""
        return self.kind is CONVERSATIONS and self.request.GET.get("summaries") == "1"

    def get_template_names(self):
        return [f"workspace/{self.kind.key}_list.html"]

    def get_queryset(self):
        qs = self.scoped()
        self.sort = self.kind.sorts.parse(self.request.GET)
        if self.kind is CONVERSATIONS:
            qs = qs.select_related("agent", "contact")
            if self.request.GET.get("status") in Conversation.Status.values:
                qs = qs.filter(status=self.request.GET["status"])
            if "agent" in self.request.GET:  # another account's agent, or no ID at all: there is no such list
                self.agent = get_object_or_404(Agent.objects.in_account(self.account),
                                               public_id=uuid_or_404(self.request.GET["agent"], "No such agent."))
                qs = qs.filter(agent=self.agent)
        q = search_text(self.request.GET)
        if q and self.kind is CONVERSATIONS:
            qs = qs.filter(conversations_matching(self.account, q, summaries=self.summaries))
        elif q:
            qs = qs.filter(containing(q, self.kind.search))
        return qs.order_by(*self.sort.order_by)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(q=search_text(self.request.GET), sort=self.sort, extra_query=self.sort.extra_query,
                   clear_query=self.sort.query_with(q=None, summaries=None))
        if self.kind is CONVERSATIONS:
            any_agent = self.sort.query_with(agent=None)
            ctx.update(agent=self.agent, summaries=self.summaries, max_rows=AtMostPaginator.cap,
                       more_than_max=bool(ctx["paginator"] and ctx["paginator"].more),
                       status_queries={"all": self.sort.query_with(status=None), **{
                           status: self.sort.query_with(status=status) for status in Conversation.Status.values}},
                       all_agents_query=any_agent, one_agent_prefix=f"{any_agent}&" if any_agent else "")
        return ctx


class ScopedDetailView(KindMixin, DetailView):
    def get_template_names(self):
        return [f"workspace/{self.kind.key}_detail.html"]

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if self.kind is AGENTS:
            ctx["recent"] = self.object.conversations.select_related("contact")[:10]
        elif self.kind is CONTACTS:
            ctx["recent"] = self.object.conversations.select_related("agent")[:10]
        return ctx


class ScopedCreateView(KindMixin, FormView):
    action = "manage"
    template_name = "workspace/form.html"

    def get_form_class(self):
        return self.kind.form

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        if self.kind is CONVERSATIONS:
            kwargs["account"] = self.account
        return kwargs

    def form_valid(self, form):
        data = dict(form.cleaned_data)
        try:
            if self.kind is CONVERSATIONS:
                obj = services.conversation_record(account=self.account, by=self.request.user, request=self.request,
                                                   **data)
            else:
                obj = self.kind.create(account=self.account, by=self.request.user, request=self.request, **data)
        except ValidationError as exc:
            return self.form_errors_from(form, exc)
        if getattr(obj, "status", None) == Conversation.Status.BLOCKED:
            messages.warning(self.request, f"Conversation recorded as blocked: {obj.blocked_reason}")
        else:
            messages.success(self.request, f"{self.kind.key.capitalize()} “{obj}” saved.")
        return redirect(self.kind.url("detail", self.account, obj))


class ScopedUpdateView(KindMixin, FormView):
    action = "manage"
    template_name = "workspace/form.html"

    def dispatch(self, request, *args, **kwargs):
        self.object = None
        return super().dispatch(request, *args, **kwargs)

    def get_form_class(self):
        return self.kind.edit_form or self.kind.form

    def get_form_kwargs(self):
        self.object = self.get_object()
        return {**super().get_form_kwargs(), "instance": self.kind.model.objects.get(pk=self.object.pk)}

    def get_context_data(self, **kwargs):
        return super().get_context_data(object=self.object, **kwargs)

    def form_valid(self, form):
        fields = {name: form.cleaned_data[name] for name in form.fields}
        try:
            obj = self.kind.update(**{self.kind.key: self.object}, by=self.request.user, request=self.request,
                                   **fields)
        except ValidationError as exc:
            return self.form_errors_from(form, exc)
        messages.success(self.request, f"{self.kind.key.capitalize()} “{obj}” updated.")
        return redirect(self.kind.url("detail", self.account, obj))


class ScopedDeleteView(KindMixin, TemplateView):
    """GET asks for confirmation; POST deletes (or explains why it cannot)."""

    action = "delete"
    template_name = "workspace/confirm_delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(object=self.get_object(), **kwargs)

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            self.kind.delete(**{self.kind.key: obj}, by=request.user, request=request)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect(self.kind.url("detail", self.account, obj))
        messages.success(request, f"{self.kind.key.capitalize()} “{obj}” deleted.")
        return redirect(self.kind.url("list", self.account))
