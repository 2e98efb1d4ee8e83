"""REST API v1. Each endpoint resolves the URL's account for the key (``ApiView``), declares the permission
each method needs, and calls the same services as the pages."""

from django.db import transaction
from django.db.models import Sum
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts import services as account_services
from accounts.access import resolve_access
from accounts.models import Account
from accounts.params import uuid_or_none
from billing.models import BillingTransfer, Invoice, Plan, UsageRecord, period_start
from billing.selectors import subtree_and_pool_minutes
from billing.transfers import transfer_cancel, transfer_start
from members.invitations import invitation_create, invitation_resend, invitation_revoke
from members.models import Invitation, Membership
from members.services import descendant_memberships, membership_change_role, membership_remove
from workspace import services as workspace_services
from workspace.models import Agent, Contact, Conversation

from . import serializers as s
from .base import ApiView, idempotent
from .errors import ApiError
from .pagination import Cursor

IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                               description="Retrying with the same key and body returns the first answer and acts "
                                           "once; the same key with another body is refused (422).")


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Every path under /api/v1/ that names no endpoint: the one error body, whatever the method."""
    return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "fields": {}}}, status=404)


def account_context(view) -> dict:
    """``reaches`` for AccountSerializer: an account is named only when the key reaches it (R6)."""
    user = view.request.user
    return {"reaches": lambda a: resolve_access(user, a) is not None}


# ---- accounts ---------------------------------------------------------------------------------------

class CurrentAccountView(ApiView):
    """The account the key belongs to."""

    serializer_class = s.AccountSerializer

    def get(self, request):
        access = self.access_for(request.auth.account.public_id)
        return Response(s.AccountSerializer(access.account, context=account_context(self)).data)


class AccountView(ApiView):
    serializer_class = s.AccountSerializer
    permissions = {"GET": (), "PATCH": ("manage_settings",)}

    def get(self, request, account_id):
        return Response(s.AccountSerializer(self.account, context=account_context(self)).data)

    @extend_schema(request=s.AccountUpdateSerializer, responses=s.AccountSerializer)
    def patch(self, request, account_id):
        self.check_if_match(s.AccountSerializer(self.account, context=account_context(self)).data)
        data = s.AccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "name" in data.validated_data:
            account_services.account_rename(account=self.account, name=data.validated_data["name"], by=request.user,
                                            request=request)
        return Response(s.AccountSerializer(self.account, context=account_context(self)).data)


class ApiListView(ListModelMixin, ApiView):
    # A list endpoint (cursor-paginated); ListModelMixin tells the schema so.
    pass


class SubaccountListView(ApiListView):
    """Direct subaccounts of the account."""

    serializer_class = s.AccountSerializer
    pagination_class = type("SubaccountCursor", (Cursor,), {"ordering": "path"})
    permissions = {"GET": ("view_subaccounts",), "POST": ("manage_subaccounts",)}

    @extend_schema(parameters=[OpenApiParameter("is_active", bool, description="Only active (or suspended) ones.")])
    def get(self, request, account_id):
        qs = Account.objects.filter(parent=self.account).select_related("parent")
        active = request.query_params.get("is_active")
        if active in ("true", "false"):
            qs = qs.filter(status=Account.Status.ACTIVE) if active == "true" else \
                qs.exclude(status=Account.Status.ACTIVE)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.AccountSerializer(page, many=True, context=account_context(self)).data)

    @extend_schema(request=s.SubaccountCreateSerializer, responses={201: s.AccountSerializer},
                   parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id):
        data = s.SubaccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        child = account_services.subaccount_create(parent=self.account, name=data.validated_data["name"],
                                                   by=request.user, request=request)
        child = Account.objects.select_related("parent").get(pk=child.pk)
        return Response(s.AccountSerializer(child, context=account_context(self)).data, status=status.HTTP_201_CREATED,
                        headers={"Location": reverse("api:subaccount-detail", args=[self.account.public_id,
                                                                                     child.public_id])})


class SubaccountMixin:
    def get_subaccount(self) -> Account:
        return self.scoped_object(Account.objects.filter(parent=self.account).select_related("parent"),
                                  "subaccount_id")


class SubaccountDetailView(SubaccountMixin, ApiView):
    serializer_class = s.AccountSerializer
    permissions = {"GET": ("view_subaccounts",), "PATCH": ("manage_subaccounts",)}

    def get(self, request, account_id, subaccount_id):
        return Response(s.AccountSerializer(self.get_subaccount(), context=account_context(self)).data)

    @extend_schema(request=s.SubaccountUpdateSerializer, responses=s.AccountSerializer)
    def patch(self, request, account_id, subaccount_id):
        child = self.get_subaccount()
        self.check_if_match(s.AccountSerializer(child, context=account_context(self)).data)
        data = s.SubaccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():  # all or nothing
            if "name" in values:
                child = account_services.account_rename(account=child, name=values["name"], by=request.user,
                                                        request=request)
            if "limits" in values:
                child = account_services.subaccount_set_limits(account=child, limits=dict(values["limits"]),
                                                               by=request.user, request=request)
            if "access" in values:
                child = account_services.subaccount_set_access(account=child, matrix=dict(values["access"]),
                                                               by=request.user, request=request)
        child = Account.objects.select_related("parent").get(pk=child.pk)
        return Response(s.AccountSerializer(child, context=account_context(self)).data)


class SubaccountStatusView(SubaccountMixin, ApiView):
    """Suspend or reactivate a subaccount, and so everything below it."""

    serializer_class = s.AccountSerializer
    permissions = {"POST": ("manage_subaccounts",)}
    suspended = True

    @extend_schema(request=None, responses=s.AccountSerializer, parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id, subaccount_id):
        child = account_services.subaccount_set_status(account=self.get_subaccount(), suspended=self.suspended,
                                                       by=request.user, request=request)
        child = Account.objects.select_related("parent").get(pk=child.pk)
        return Response(s.AccountSerializer(child, context=account_context(self)).data)


# ---- members and invitations --------------------------------------------------------------------------

class MemberListView(ApiListView):
    """People with a membership of this account itself (those reaching it from above are not listed)."""

    serializer_class = s.MemberSerializer
    pagination_class = Cursor
    permissions = {"GET": ("view_members",)}

    def get(self, request, account_id):
        qs = Membership.objects.effective().filter(account=self.account).select_related("user")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.MemberSerializer(page, many=True).data)


class InvitationListView(ApiListView):
    serializer_class = s.InvitationSerializer
    pagination_class = Cursor
    permissions = {"GET": ("view_members",), "POST": ("manage_members",)}

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Invitation.Status.values)])
    def get(self, request, account_id):
        qs = Invitation.objects.filter(account=self.account)
        if request.query_params.get("status") in Invitation.Status.values:
            qs = qs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.InvitationSerializer(page, many=True).data)

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationSerializer},
                   parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id):
        data = s.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = invitation_create(account=self.account, by=request.user, request=request, **data.validated_data)
        return Response(s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class MemberDetailView(ApiView):
    """One membership of this account: read it, change its role, or remove the person (the members services:
    a role only up to what the key may give, never the last Owner of a top-level account)."""

    serializer_class = s.MemberSerializer
    permissions = {"GET": ("view_members",), "PATCH": ("manage_members",), "DELETE": ("manage_members",)}

    def get_membership(self) -> Membership:
        return self.scoped_object(Membership.objects.filter(account=self.account).select_related("user", "account"),
                                  "membership_id")

    def get(self, request, account_id, membership_id):
        return Response(s.MemberSerializer(self.get_membership()).data)

    @extend_schema(request=s.MemberRoleSerializer, responses=s.MemberSerializer)
    def patch(self, request, account_id, membership_id):
        membership = self.get_membership()
        self.check_if_match(s.MemberSerializer(membership).data)
        data = s.MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_change_role(membership=membership, role=data.validated_data["role"],
                                            by=request.user, request=request)
        return Response(s.MemberSerializer(membership).data)

    @extend_schema(parameters=[OpenApiParameter(
        "include_subaccounts", bool, description="Also remove the person's own memberships in subaccounts below "
                                                 "(offboarding is complete); default false.")],
        responses={204: None})
    def delete(self, request, account_id, membership_id):
        membership = self.get_membership()
        also = list(descendant_memberships(membership)) \
            if request.query_params.get("include_subaccounts") == "true" else []
        membership_remove(membership=membership, by=request.user, also=also, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationMixin:
    def get_invitation(self) -> Invitation:
        return self.scoped_object(Invitation.objects.filter(account=self.account).select_related("account"),
                                  "invitation_id")


class InvitationDetailView(InvitationMixin, ApiView):
    serializer_class = s.InvitationSerializer
    permissions = {"GET": ("view_members",)}

    def get(self, request, account_id, invitation_id):
        return Response(s.InvitationSerializer(self.get_invitation()).data)


class InvitationActionView(InvitationMixin, ApiView):
    """Withdraw a pending invitation (its link stops working), or send it again with a fresh link."""

    serializer_class = s.InvitationSerializer
    permissions = {"POST": ("manage_members",)}
    action = "revoke"  # or "resend"

    @extend_schema(request=None, responses=s.InvitationSerializer, parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id, invitation_id):
        service = invitation_revoke if self.action == "revoke" else invitation_resend
        invitation = service(invitation=self.get_invitation(), by=request.user, request=request)
        return Response(s.InvitationSerializer(invitation).data)


# ---- agents and contacts (one pair of views, parameterized) ----------------------------------------------

class WorkspaceListView(ApiListView):
    model = None
    category = ""
    service_create = None

    def get_permissions_map(self):
        return {"GET": (f"view_{self.category}",), "POST": (f"manage_{self.category}",)}

    def initial(self, request, *args, **kwargs):
        self.permissions = self.get_permissions_map()
        super().initial(request, *args, **kwargs)

    def filtered(self, qs):
        return qs

    def get(self, request, account_id):
        page = self.paginate_queryset(self.filtered(self.model.objects.in_account(self.account)))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @idempotent
    def post(self, request, account_id):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        obj = type(self).service_create(account=self.account, by=request.user, request=request, **data.validated_data)
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)


class WorkspaceDetailView(ApiView):
    model = None
    category = ""
    service_update = None
    service_delete = None
    kind = ""

    def initial(self, request, *args, **kwargs):
        self.permissions = {"GET": (f"view_{self.category}",), "PATCH": (f"manage_{self.category}",),
                            "DELETE": (f"delete_{self.category}",)}
        super().initial(request, *args, **kwargs)

    def get_object(self):
        return self.scoped_object(self.model.objects.in_account(self.account), "object_id")

    def get(self, request, account_id, object_id):
        return Response(self.get_serializer(self.get_object()).data)

    def patch(self, request, account_id, object_id):
        obj = self.get_object()
        self.check_if_match(self.get_serializer(obj).data)
        data = self.get_serializer(obj, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        obj = type(self).service_update(**{self.kind: obj}, by=request.user, request=request, **data.validated_data)
        return Response(self.get_serializer(obj).data)

    def delete(self, request, account_id, object_id):
        type(self).service_delete(**{self.kind: self.get_object()}, by=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


AGENT_FILTERS = [OpenApiParameter("status", str, enum=Agent.Status.values)]


@extend_schema(parameters=AGENT_FILTERS, methods=["GET"])
@extend_schema(parameters=[IDEMPOTENCY], methods=["POST"], responses={201: s.AgentSerializer})
class AgentListView(WorkspaceListView):
    model, category, serializer_class, pagination_class = Agent, "agents", s.AgentSerializer, Cursor
    service_create = staticmethod(workspace_services.agent_create)

    def filtered(self, qs):
        value = self.request.query_params.get("status")
        return qs.filter(status=value) if value in Agent.Status.values else qs


class AgentDetailView(WorkspaceDetailView):
    model, category, serializer_class, kind = Agent, "agents", s.AgentSerializer, "agent"
    service_update = staticmethod(workspace_services.agent_update)
    service_delete = staticmethod(workspace_services.agent_delete)


@extend_schema(parameters=[IDEMPOTENCY], methods=["POST"], responses={201: s.ContactSerializer})
class ContactListView(WorkspaceListView):
    model, category, serializer_class, pagination_class = Contact, "contacts", s.ContactSerializer, Cursor
    service_create = staticmethod(workspace_services.contact_create)


class ContactDetailView(WorkspaceDetailView):
    model, category, serializer_class, kind = Contact, "contacts", s.ContactSerializer, "contact"
    service_update = staticmethod(workspace_services.contact_update)
    service_delete = staticmethod(workspace_services.contact_delete)


# ---- conversations --------------------------------------------------------------------------------------

class ConversationListView(ApiListView):
    serializer_class = s.ConversationSerializer
    pagination_class = type("ConversationCursor", (Cursor,), {"ordering": "-started_at"})
    permissions = {"GET": ("view_conversations",), "POST": ("manage_conversations",)}

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Conversation.Status.values),
                               OpenApiParameter("agent_id", OpenApiTypes.UUID)])
    def get(self, request, account_id):
        qs = Conversation.objects.in_account(self.account).select_related("agent", "contact")
        if request.query_params.get("status") in Conversation.Status.values:
            qs = qs.filter(status=request.query_params["status"])
        if "agent_id" in request.query_params:  # the agent's own id, so its calls come from their index in order
            agent = Agent.objects.in_account(self.account).filter(
                public_id=uuid_or_none(request.query_params["agent_id"])).values_list("pk", flat=True).first()
            qs = qs.filter(agent_id=agent) if agent is not None else qs.none()
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.ConversationSerializer(page, many=True).data)

    @extend_schema(request=s.ConversationRecordSerializer, responses={201: s.ConversationSerializer},
                   parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id):
        data = s.ConversationRecordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        agent = Agent.objects.in_account(self.account).filter(public_id=values.pop("agent_id")).first()
        contact = Contact.objects.in_account(self.account).filter(public_id=values.pop("contact_id")).first()
        missing = {**({"agent_id": ["No such agent in this account."]} if agent is None else {}),
                   **({"contact_id": ["No such contact in this account."]} if contact is None else {})}
        if missing:
            raise ApiError(400, "invalid", "Some fields are not valid.", missing)
        conversation = workspace_services.conversation_record(account=self.account, agent=agent, contact=contact,
                                                              by=request.user, request=request, **values)
        return Response(s.ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailView(ApiView):
    serializer_class = s.ConversationSerializer
    permissions = {"GET": ("view_conversations",)}

    def get(self, request, account_id, object_id):
        obj = self.scoped_object(Conversation.objects.in_account(self.account).select_related("agent", "contact"),
                                 "object_id")
        return Response(s.ConversationSerializer(obj).data)


# ---- usage and invoices ---------------------------------------------------------------------------------

class UsageView(ApiView):
    """Minutes used in a period by the account and by each direct subaccount (with its subtree)."""

    serializer_class = s.UsageSerializer
    permissions = {"GET": ("view_usage",)}

    @extend_schema(parameters=[OpenApiParameter("period", str, description="YYYY-MM; default: this month.",
                                                pattern=r"^\d{4}-\d{2}$")])
    def get(self, request, account_id):
        raw = request.query_params.get("period")
        period = period_start()
        if raw is not None:
            try:
                year, month = (int(x) for x in raw.split("-"))
                period = period.replace(year=year, month=month, day=1)
            except ValueError as exc:
                raise ApiError(400, "invalid", "Some fields are not valid.",
                               {"period": ["Use YYYY-MM, e.g. 2026-01."]}) from exc
        children = list(Account.objects.filter(parent=self.account).order_by("path")[:500])
        subtree = subtree_and_pool_minutes([self.account, *children], period)
        own = dict(UsageRecord.objects.filter(period=period, account__in=[self.account, *children])
                   .values("account").annotate(total=Sum("minutes")).values_list("account", "total"))

        def row(a):
            return {"account_id": a.public_id, "name": a.name, "level": a.depth, "minutes": own.get(a.pk, 0),
                    "subtree_minutes": subtree[a.pk][0], "pool_minutes": subtree[a.pk][1]}

        return Response(s.UsageSerializer({"period": period, "account": row(self.account),
                                           "subaccounts": [row(c) for c in children]}).data)


class InvoiceListView(ApiListView):
    serializer_class = s.InvoiceSerializer
    pagination_class = type("InvoiceCursor", (Cursor,), {"ordering": "-period"})
    permissions = {"GET": ("view_billing",)}

    def get(self, request, account_id):
        qs = Invoice.objects.filter(account=self.account).prefetch_related("lines")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.InvoiceSerializer(page, many=True).data)


class InvoiceDetailView(ApiView):
    serializer_class = s.InvoiceSerializer
    permissions = {"GET": ("view_billing",)}

    def get(self, request, account_id, invoice_id):
        obj = self.scoped_object(Invoice.objects.filter(account=self.account).prefetch_related("lines"),
                                 "invoice_id")
        return Response(s.InvoiceSerializer(obj).data)


# ---- billing transfers ----------------------------------------------------------------------------------

class BillingTransferView(SubaccountMixin, ApiListView):
    """Billing transfers of a direct subaccount: start one (the billing owner gets the acceptance link by
    email), or read their status."""

    serializer_class = s.BillingTransferSerializer
    pagination_class = Cursor
    # Starting also takes billing and subaccount management on the parent: the service checks it.
    permissions = {"GET": ("view_subaccounts", "view_billing"), "POST": ("manage_subaccounts", "manage_billing")}

    def get(self, request, account_id, subaccount_id):
        qs = BillingTransfer.objects.filter(account=self.get_subaccount()).select_related("plan")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.BillingTransferSerializer(page, many=True).data)

    @extend_schema(request=s.BillingTransferStartSerializer, responses={201: s.BillingTransferSerializer},
                   parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id, subaccount_id):
        child = self.get_subaccount()  # another tenant's id is a 404 before anything about the body
        data = s.BillingTransferStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        plan = Plan.objects.filter(code=values.pop("plan")).first()
        if plan is None:
            raise ApiError(400, "invalid", "Some fields are not valid.", {"plan": ["No such plan."]})
        transfer = transfer_start(account=child, by=request.user, plan=plan, request=request, **values)
        return Response(s.BillingTransferSerializer(transfer).data, status=status.HTTP_201_CREATED)


class BillingTransferMixin(SubaccountMixin):
    def get_transfer(self) -> BillingTransfer:
        return self.scoped_object(BillingTransfer.objects.filter(account=self.get_subaccount())
                                  .select_related("plan", "account", "from_parent"), "transfer_id")


class BillingTransferDetailView(BillingTransferMixin, ApiView):
    """One billing transfer of a direct subaccount: its status."""

    serializer_class = s.BillingTransferSerializer
    permissions = {"GET": ("view_subaccounts", "view_billing")}

    def get(self, request, account_id, subaccount_id, transfer_id):
        return Response(s.BillingTransferSerializer(self.get_transfer()).data)


class BillingTransferCancelView(BillingTransferMixin, ApiView):
    """Withdraw an open billing transfer (the billing owner's link stops working). Accepting is the billing
    owner's own act, through the link they were sent, so the API has no "accept"."""

    serializer_class = s.BillingTransferSerializer
    permissions = {"POST": ("manage_subaccounts", "manage_billing")}

    @extend_schema(request=None, responses=s.BillingTransferSerializer, parameters=[IDEMPOTENCY])
    @idempotent
    def post(self, request, account_id, subaccount_id, transfer_id):
        transfer = transfer_cancel(transfer=self.get_transfer(), by=request.user, request=request)
        return Response(s.BillingTransferSerializer(transfer).data)
