"""Representations of the API. Input serializers only parse; the services decide (no second set of rules)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import NAME_MAX_LENGTH, Account
from accounts.permissions import CATEGORIES
from billing.models import BillingTransfer, Invoice, InvoiceLine
from members.models import Invitation, Membership
from members.roles import RoleId
from workspace.models import Agent, Contact, Conversation


class ErrorBodySerializer(serializers.Serializer):
    class ErrorSerializer(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    error = ErrorSerializer()


class LimitsSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=0, max_value=10_000_000, allow_null=True, required=False)
    concurrent_calls = serializers.IntegerField(min_value=0, max_value=10_000_000, allow_null=True, required=False)
    agents = serializers.IntegerField(min_value=0, max_value=10_000_000, allow_null=True, required=False)
    members = serializers.IntegerField(min_value=0, max_value=10_000_000, allow_null=True, required=False)


class AccessSerializer(serializers.Serializer):
    """Access categories (None, Read or Full each); a category left out is not capped."""

    def get_fields(self):
        return {c.key: serializers.ChoiceField(choices=[lvl.name.lower() for lvl in c.levels], required=False)
                for c in CATEGORIES}


class AccountSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    is_active = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at", read_only=True)
    parent_account_id = serializers.SerializerMethodField(
        help_text="The parent's id, when the key reaches the parent; null for a root or a parent out of reach.")
    level = serializers.IntegerField(source="depth", read_only=True)
    limits = serializers.SerializerMethodField()
    access = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "name", "status", "is_active", "level", "created", "parent_account_id", "limits", "access"]
        read_only_fields = fields

    def get_is_active(self, account) -> bool:
        return account.status == Account.Status.ACTIVE

    def get_parent_account_id(self, account) -> str | None:
        reaches = self.context.get("reaches")
        parent = account.parent
        if parent is None or reaches is None or not reaches(parent):
            return None  # nothing upward (R6)
        return str(parent.public_id)

    @extend_schema_field(LimitsSerializer)
    def get_limits(self, account):
        return account.limits()

    @extend_schema_field(AccessSerializer)
    def get_access(self, account):
        return dict(account.access_categories or {})


class AccountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False)


class SubaccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)


class SubaccountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False)
    limits = LimitsSerializer(required=False, help_text="Every limit: a null (or missing) one takes the parent's "
                                                        "default now.")
    access = AccessSerializer(required=False, help_text="The whole set of access categories.")


class AgentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Agent
        fields = ["id", "name", "description", "language", "status", "created"]


class ContactSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "email", "created"]
        extra_kwargs = {"phone": {"validators": []}}  # the model's validators run in the service


class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    agent_id = serializers.UUIDField(source="agent.public_id", read_only=True)
    contact_id = serializers.UUIDField(source="contact.public_id", read_only=True)
    minutes = serializers.IntegerField(read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "agent_id", "contact_id", "direction", "started_at", "ended_at", "duration_seconds",
                  "minutes", "status", "blocked_reason", "summary", "transcript", "recording_url", "insights",
                  "caller_ip", "caller_location"]
        read_only_fields = fields


class TranscriptMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["agent", "caller", "system"])
    text = serializers.CharField(max_length=5000, allow_blank=True)


class ConversationRecordSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    contact_id = serializers.UUIDField()
    direction = serializers.ChoiceField(choices=Conversation.Direction.values, default=Conversation.Direction.INBOUND)
    started_at = serializers.DateTimeField(help_text="Not in the future (5 minutes of clock skew allowed) and not "
                                           "before the first day of last month (UTC). Minutes are metered in this "
                                           "month, or in the current one when this month's invoice is closed.")
    duration_seconds = serializers.IntegerField(min_value=1, max_value=6 * 3600)
    summary = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    transcript = serializers.ListField(child=TranscriptMessageSerializer(), required=False, max_length=2000,
                                       default=list, help_text="The messages; not stored when the account's "
                                       "retention policy says so (Trust Center).")
    recording_url = serializers.URLField(required=False, allow_blank=True, max_length=500, default="")
    insights = serializers.DictField(required=False, default=dict, help_text="Ratings, outcomes, details.")
    caller_ip = serializers.IPAddressField(required=False, allow_null=True, default=None)
    caller_location = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    joined = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "is_agency", "joined", "last_active_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=RoleId.values, help_text="The new role; only roles the key may give.")


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    role = serializers.ChoiceField(choices=[r for r in RoleId.values if r != RoleId.AGENCY_ADMIN])


class UsageRowSerializer(serializers.Serializer):
    account_id = serializers.UUIDField()
    name = serializers.CharField()
    level = serializers.IntegerField()
    minutes = serializers.IntegerField(help_text="Minutes used in the period by the account itself.")
    subtree_minutes = serializers.IntegerField(help_text="Minutes of the account and every account below it.")
    pool_minutes = serializers.IntegerField(help_text=(
        "What the account's minutes pool has given in the period: subtree_minutes and the minutes of subaccounts "
        "that used it and have since left (a billing transfer or a move). The pool's limit applies to this."))


class UsageSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="First day of the month.")
    account = UsageRowSerializer()
    subaccounts = UsageRowSerializer(many=True, help_text="Direct subaccounts, each with its whole subtree.")


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["kind", "description", "minutes", "amount_cents"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = ["id", "period", "plan_name", "plan_price_cents", "included_minutes", "total_minutes",
                  "overage_minutes", "total_cents", "closed_at", "payment_status", "lines"]
        read_only_fields = fields


class BillingTransferSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    plan = serializers.CharField(source="plan.code", read_only=True)

    class Meta:
        model = BillingTransfer
        fields = ["id", "status", "billing_owner_email", "plan", "cutover", "keep_agency_access", "created_at",
                  "expires_at", "completed_at"]
        read_only_fields = fields


class BillingTransferStartSerializer(serializers.Serializer):
    billing_owner_email = serializers.CharField(max_length=254, help_text="Who accepts and pays from now on.")
    plan = serializers.SlugField(help_text="The plan code of the new independent account, e.g. agency.")
    cutover = serializers.ChoiceField(choices=BillingTransfer.Cutover.values, default=BillingTransfer.Cutover.NOW)
    keep_agency_access = serializers.BooleanField(default=False)
