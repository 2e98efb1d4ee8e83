"""The account's navigation bar (``base.html``), written in Python: the template version tested up to fourteen
conditions and reversed fourteen URLs through the template engine on every account page (about 0.4 ms). The links,
their conditions and what marks each as the current page are the table below; the output is the same links,
texts and ``aria-current`` marks (``tests/test_account_nav.py`` compares it with the template it replaced)."""

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from .fast_url import uuid_urls

register = template.Library()


def _starts(prefix):
    return lambda name, namespace: (name or "").startswith(prefix)


def _is(*names):
    return lambda name, namespace: name in names


def _in_namespace(wanted):
    return lambda name, namespace: namespace == wanted


def _can(codename):
    return lambda can, root, agency, govern: bool(can.get(codename))


def _always(can, root, agency, govern):
    return True


# (label, URL name, shown when (can, is root, is agency user, may govern agency), current when (url name, namespace))
LINKS = (
    ("Dashboard", "accounts:dashboard", _always, _is("dashboard")),
    ("Agents", "workspace:agent-list", _can("view_agents"), _starts("agent-")),
    ("Contacts", "workspace:contact-list", _can("view_contacts"), _starts("contact-")),
    ("Conversations", "workspace:conversation-list", _can("view_conversations"), _starts("conversation-")),
    ("Members", "members:list", _can("view_members"), _in_namespace("members")),
    ("Subaccounts", "accounts:subaccount-list", _can("view_subaccounts"), _starts("subaccount-")),
    ("Clients", "agency:clients", lambda can, root, agency, govern: root and can.get("view_subaccounts") and not agency,
     _is("clients")),
    ("Agency access", "agency:client-access", lambda can, root, agency, govern: root and govern,
     _is("client-access", "client-settings")),
    # Billing, or else Usage
    ("Billing", "billing:overview", _can("view_billing"), _in_namespace("billing")),
    ("Usage", "billing:usage", lambda can, root, agency, govern: not can.get("view_billing") and can.get("view_usage"),
     _in_namespace("billing")),
    ("Audit", "accounts:audit-log", _can("view_audit_log"), _is("audit-log")),
    ("API keys", "developers:apikey-list", _can("view_developer_tools"), _starts("apikey-")),
    ("Webhooks", "developers:webhook-list", _can("manage_developer_tools"), _starts("webhook-")),
    # Trust Center, or else My data
    ("Trust Center", "trust:index", _can("view_trust_center"), _in_namespace("trust")),
    ("My data", "trust:my-data", lambda can, root, agency, govern: not can.get("view_trust_center"), _is("my-data")),
    ("Settings", "accounts:settings", _can("view_settings"), _is("settings")),
)


@register.simple_tag(takes_context=True)
def account_nav(context) -> str:
    """The ``<a>`` links of the current account's navigation, one per line."""
    account, access = context.get("current_account"), context.get("account_access")
    if account is None or access is None:
        return ""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    name, namespace = (match.url_name, match.namespace) if match else (None, None)
    can, root = context.get("can") or {}, account.is_root()  # a method (treebeard): the template called it
    agency, govern = access.is_agency, context.get("may_govern_agency")
    links, url_of = [], uuid_urls(namespace)
    for label, view, shown, current in LINKS:
        if not shown(can, root, agency, govern):
            continue
        url = url_of(view, account.public_id)
        mark = ' aria-current="page"' if current(name, namespace) else ""
        links.append(f'<a href="{escape(url)}"{mark}>{label}</a>')
    return mark_safe("\n      ".join(links))
