"""Each agent's stored count of its conversations (``Agent.conversation_count``), set again from the rows."""

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def recount_agent_conversations(agent_model=None, conversation_model=None, agents=None) -> int:
    """Set the count of every agent (or of the ``agents`` queryset) whose stored count differs from its
    conversations, in one UPDATE; returns how many were wrong. The models are given by a migration (its
    historical models), taken from the app otherwise."""
    if agent_model is None:
        from .models import Agent as agent_model
        from .models import Conversation as conversation_model
    counted = Coalesce(Subquery(conversation_model.objects.filter(agent=OuterRef("pk")).order_by()
                                .values("agent").annotate(n=Count("pk")).values("n")), Value(0))
    agents = agent_model.objects.all() if agents is None else agents
    with transaction.atomic():
        # Their rows first: a call being recorded has counted itself (it commits, and the count below sees it) or
        # waits for this to commit (and then counts itself on top); the count never reads a snapshot older
        # than an increment it overwrites.
        list(agents.select_for_update().order_by("pk").values_list("pk", flat=True))
        return agents.alias(counted=counted).exclude(conversation_count=counted.copy()).update(
            conversation_count=counted.copy())
