"""Writing the audit trail: called inside the service's transaction, so the row and the change land together.
And the actions it holds, for the filters that offer them."""

from django.core.exceptions import PermissionDenied
from django.db import connection

from .access import resolve_access
from .models import Account, AuditEvent

# The distinct actions by a skip scan of ``audit_action_idx`` (action first): one probe for the next action after
# the last one found, where DISTINCT reads every event (most of them a call's). For one account, each action is
# kept when a probe of the same index finds it there: two probes an action the platform has written, whatever the
# number of events.
# ``n`` bounds the walk (a step that failed to move on would otherwise never end).
_ACTIONS_SQL = """
    WITH RECURSIVE seen(action, n) AS (
        SELECT (SELECT action FROM {table} ORDER BY action LIMIT 1), 1
        UNION ALL
        SELECT (SELECT action FROM {table} WHERE action > seen.action ORDER BY action LIMIT 1), seen.n + 1
        FROM seen WHERE seen.action IS NOT NULL AND seen.n < 10000
    )
    SELECT action FROM seen WHERE action IS NOT NULL{mine} ORDER BY action
"""
_MINE = " AND EXISTS (SELECT 1 FROM {table} e WHERE e.action = seen.action AND e.account_id = %s)"


def audit_actions(account_id: int | None = None) -> list[str]:
    """The actions of the audit trail (of one account's events when given), in order."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = _ACTIONS_SQL.format(table=table, mine=_MINE.format(table=table) if account_id is not None else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [] if account_id is None else [account_id])
        return [action for (action,) in cursor.fetchall()]


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def staff_acting(by, staff, refusal: str = "Changes for the platform are made by platform staff.") -> dict:
    """The audit data of a change the platform makes (``by=None``) through a staff member in the admin
    (``staff``): the row names them (``actor=by or staff``) and is marked ``staff``, so the customer's trail says
    who did it rather than "system". Call it before changing anything: ``staff`` must be an active staff member
    (PermissionDenied with ``refusal``, which names what was refused), and beside a person ``by`` it is a mistake
    (ValueError)."""
    if staff is None:
        return {}
    if by is not None:
        raise ValueError("staff names who acts for the platform (by=None); a person acting is by.")
    if not (staff.is_active and staff.is_staff):
        raise PermissionDenied(refusal)
    return {"staff": True}


def platform_via(data) -> str:
    """How an audit row's data says the platform acted: "platform support" (staff under the customer's
    consented support access), "platform staff" (a change made in the admin, ``staff_acting``) or "". Support
    decisions keep the staff member's email under "staff", so only ``True`` there means the admin."""
    if not isinstance(data, dict):
        return ""
    if data.get("via_support"):
        return "platform support"
    return "platform staff" if data.get("staff") is True else ""


def audit(*, account: Account, actor, action: str, summary: str, request=None, **data) -> AuditEvent:
    """One audit row. When the actor works here as an agency user, the row names their agency, so
    the client's Owner and Admins see every change an agency makes in their account; when they act
    through an API key, it names the key; platform staff under consented support access are named as such."""
    if getattr(actor, "is_staff", False) and "via_support" not in data:
        access = resolve_access(actor, account)  # cached for the request
        if access is not None and access.is_support:
            data["via_support"] = access.support.get_level_display()
    if getattr(actor, "pk", None) and "via_agency" not in data:
        from members.models import Membership

        agency = (Membership.objects.filter(user=actor, account=account, is_agency=True)
                  .values_list("agency_account__name", flat=True).first())
        if agency:
            data["via_agency"] = agency
    ceiling = getattr(actor, "access_ceiling", None)
    if ceiling is not None:  # acting through an API key: the row names the key
        data.setdefault("via", ceiling.label)
        summary = f"{summary} (via {ceiling.label})"
    return AuditEvent.objects.create(
        account=account,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        summary=summary[:255],
        data=data,
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:255] if request is not None else ""),
    )
