"""The Subaccounts table's rows, written in Python (issue 14).

25 rows of ~30 template nodes each (links, badges, the row's switch form) cost the page ~7 ms as template nodes,
more than everything else on it; here they are one pass of ``format_html`` (every value escaped), with the links
from ``fast_url``'s cached URL shapes. The markup is what ``accounts/_subaccount_rows.html`` drew before."""

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils.safestring import mark_safe

from accounts.html import format_html, format_html_join

from .fast_url import uuid_urls

register = template.Library()


def _csrf_input(context) -> str:
    return CsrfTokenNode().render(context)  # what ``{% csrf_token %}`` writes


def _status(account) -> str:
    return (mark_safe('<span class="badge badge-warn">Suspended</span>') if account.is_suspended
            else mark_safe('<span class="badge">Active</span>'))


@register.simple_tag(takes_context=True)
def subaccount_rows(context):
    """The ``<tr>``s of ``object_list`` (accounts with their figures), as the template drew them."""
    here = context["current_account"].public_id
    q, under, sort, can = context.get("q"), context.get("under"), context.get("sort"), context.get("can") or {}
    offset = context.get("depth_offset") or 0
    may_transfer = can.get("manage_billing") and can.get("manage_subaccounts")
    _url = uuid_urls()
    list_url, switch_url, csrf = _url("accounts:subaccount-list", here), _url("accounts:switch"), _csrf_input(context)
    top = "" if under or q else " top"
    rows = []
    for sub in context["object_list"]:
        if sub.numchild and not q:
            expander = format_html(
                '<button type="button" class="expander" aria-expanded="false" aria-label="Show subaccounts of {}" '
                'hx-get="{}?under={}&amp;sort={}" hx-target="closest tr" hx-swap="afterend" '
                'hx-trigger="click once">▸</button><noscript><a href="?under={}">▸</a></noscript>',
                sub.name, list_url, sub.public_id, sort.value if sort else "", sub.public_id)
        elif not q:
            expander = mark_safe('<span class="expander-spacer"></span>')
        else:
            expander = ""
        context_note = ""
        if q and sub.parent_id and sub.parent_id != context["current_account"].pk:
            context_note = format_html(' <span class="muted small">in {}</span>', sub.parent.name)
        status = _status(sub)
        if sub.transfer_status:
            status += format_html(' <a class="badge badge-warn" href="{}#billing-transfer">{}</a>',
                                  _url("accounts:subaccount-billing", here, sub.public_id),
                                  "Transfer pending" if sub.transfer_status == "pending" else "Transfer scheduled")
        transfer = ""
        if may_transfer and not sub.transfer_status:
            transfer = format_html('<a href="{}">Transfer billing…</a>', _url("billing:transfer-start", here,
                                                                              sub.public_id))
        rows.append((
            sub.depth + offset, top, sub.depth, expander, _url("accounts:subaccount-overview", here, sub.public_id),
            sub.name, context_note, sub.billing_mode_label, sub.members_count, sub.agents_count, sub.minutes_used,
            status, transfer, switch_url, csrf, sub.public_id, _url("accounts:dashboard", sub.public_id)))
    return format_html_join(
        "\n",
        '<tr class="indent-{}{}" data-depth="{}">\n  <td>{} <a href="{}">{}</a>{}</td>\n  <td>{}</td>\n'
        '  <td class="num">{}</td>\n  <td class="num">{}</td>\n  <td class="num">{}</td>\n  <td>{}</td>\n'
        '  <td class="actions">{}\n    <form method="post" action="{}">{}\n'
        '      <input type="hidden" name="account" value="{}"><input type="hidden" name="next" value="{}">\n'
        '      <button type="submit" class="linkbutton">Switch to</button>\n    </form>\n  </td>\n</tr>',
        rows)


@register.simple_tag(takes_context=True)
def parent_billed_rows(context):
    """The Clients page's parent-billed subaccounts (``subaccounts``, a page of them with their figures)."""
    here = context["current_account"]
    _url = uuid_urls()
    switch_url, csrf = _url("accounts:switch"), _csrf_input(context)
    rows = []
    for s in context["subaccounts"]:
        own = format_html(" + {} of its own", s.members_count) if s.members_count else ""
        status = _status(s)
        rows.append((_url("accounts:subaccount-overview", here.public_id, s.public_id), s.name, here.name, own,
                     s.minutes_used, status, switch_url, csrf, s.public_id))
    return format_html_join(
        "\n",
        '<tr>\n    <td><a href="{}">{}</a></td>\n    <td>Parent billing</td>\n'
        '    <td>Everyone in {} (inherited){}</td>\n    <td class="num">{}</td>\n    <td>{}</td>\n'
        '    <td><form method="post" action="{}">{}<input type="hidden" name="account" value="{}">'
        '<button type="submit" class="linkbutton">Switch to</button></form></td>\n  </tr>',
        rows)
