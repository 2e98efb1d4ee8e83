"""The switcher's list items, written in Python (issue 14).

A page of 50 accounts of ~15 template nodes each cost the switcher ~6 ms as template nodes, most of the page;
here they are one pass of ``format_html`` (every value escaped). The markup is what
``accounts/_switcher_items.html`` drew with a loop before."""

from django import template
from django.urls import reverse
from django.utils.safestring import mark_safe

from accounts.html import format_html

register = template.Library()

CLIENTS = "Clients (agency access)"


@register.simple_tag(takes_context=True)
def switcher_items(context):
    """The ``<li>``s of ``entries`` (dicts: account, and group, role or context)."""
    q, current_id, carry = context.get("q"), context.get("current_id") or "", context.get("carry") or ""
    htmx = bool(getattr(context["request"], "htmx", False))
    switcher_url = reverse("accounts:switcher")
    items, last_group = [], None
    for index, entry in enumerate(context["entries"]):
        account, group = entry["account"], entry.get("group")
        if group and group != last_group and (group != "Your accounts" or index):
            items.append(format_html('<li class="switcher-group">{}</li>', group))
        last_group = group if group else last_group
        public_id = str(account.public_id)
        current = public_id == current_id
        if account.numchild and not q and group != CLIENTS:
            if htmx:
                expander = format_html(
                    '<button type="button" class="expander" aria-expanded="false" aria-label="Show subaccounts of {}"'
                    ' hx-get="{}?parent={}&amp;{}" hx-target="next .switcher-children" hx-trigger="click once">▸'
                    '</button>', account.name, switcher_url, public_id, carry)
            else:
                expander = format_html('<a class="expander" href="?parent={}&amp;{}" aria-label="Show subaccounts '
                                       'of {}">▸</a>', public_id, carry, account.name)
        else:
            expander = mark_safe('<span class="expander-spacer"></span>')
        badges = [mark_safe(' <span class="badge badge-current">current</span>')] if current else []
        if entry.get("role"):
            badges.append(format_html(' <span class="badge">{}</span>', entry["role"]))
        if entry.get("context"):
            badges.append(format_html(' <span class="muted small">in {}</span>', entry["context"]))
        if account.numchild:
            badges.append(format_html(' <span class="muted small">{} sub</span>', account.numchild))
        items.append(format_html(
            '<li class="switcher-item">\n  <div class="switcher-row{}">\n    {}\n    <button type="submit" '
            'name="account" value="{}" class="switch-target">{}</button>{}\n  </div>\n  '
            '<ul class="switcher-list switcher-children"></ul>\n</li>',
            " is-current" if current else "", expander, public_id, account.name, mark_safe("".join(badges))))
    return mark_safe("\n".join(items))
