"""The account navigation written in Python (accounts/templatetags/account_nav.py, issue 14) gives the links of the
template it replaced: the same links, in the same order, with the same texts and current-page marks, for every
combination of the permissions, flags and sections that decide them."""

import itertools
import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template import engines
from django.test import RequestFactory
from django.urls import resolve, reverse

from accounts.templatetags.account_nav import LINKS

# The navigation as base.html wrote it before (the reference).
TEMPLATE_NAV = (Path(__file__).parent / "reference" / "account_nav_template.html").read_text()
CODENAMES = sorted({"view_agents", "view_contacts", "view_conversations", "view_members", "view_subaccounts",
                    "view_billing", "view_usage", "view_audit_log", "view_developer_tools", "manage_developer_tools",
                    "view_trust_center", "view_settings"})
LINK = re.compile(r'<a href="([^"]*)"\s*(aria-current="page")?\s*>([^<]*)</a>')


def links(html: str) -> list[tuple[str, bool, str]]:
    return [(href, bool(current), text) for href, current, text in LINK.findall(html)]


def render_both(path: str, can: dict, root: bool, agency: bool, govern: bool):
    # is_root is a method, as on Account (treebeard): the template called it, Python must too
    account = SimpleNamespace(public_id=uuid.UUID(path.split("/")[2]), is_root=lambda: root)
    request = RequestFactory().get(path)
    request.resolver_match = resolve(path)
    context = {"request": request, "current_account": account, "can": can, "may_govern_agency": govern,
               "account_access": SimpleNamespace(is_agency=agency)}
    engine = engines["django"]
    return (links(engine.from_string("{% load account_nav %}{% account_nav %}").render(context)),
            links(engine.from_string(TEMPLATE_NAV).render(context)))


def pages(pid: uuid.UUID) -> list[str]:
    """A page of each section the navigation marks (and one it does not)."""
    names = [("accounts:dashboard", [pid]), ("workspace:agent-list", [pid]), ("workspace:contact-list", [pid]),
             ("workspace:conversation-list", [pid]), ("members:list", [pid]), ("accounts:subaccount-list", [pid]),
             ("accounts:subaccount-create", [pid]), ("agency:clients", [pid]), ("agency:client-access", [pid]),
             ("billing:overview", [pid]), ("billing:usage", [pid]), ("accounts:audit-log", [pid]),
             ("developers:apikey-list", [pid]), ("developers:webhook-list", [pid]), ("trust:index", [pid]),
             ("trust:my-data", [pid]), ("accounts:settings", [pid]), ("accounts:subaccount-defaults", [pid])]
    return [reverse(name, args=args) for name, args in names]


@pytest.mark.parametrize("root, agency, govern", list(itertools.product([True, False], repeat=3)))
def test_the_same_links_as_the_template_for_every_permission_and_section(root, agency, govern):
    pid = uuid.uuid4()
    # every codename alone, none, all, and the pairs that decide between two links
    sets = [set(), set(CODENAMES), *({c} for c in CODENAMES), {"view_billing", "view_usage"},
            {"view_subaccounts", "view_trust_center"}, {"view_usage", "view_trust_center", "view_members"}]
    seen_current = set()
    for path in pages(pid):
        for codenames in sets:
            ours, template = render_both(path, dict.fromkeys(codenames, True), root, agency, govern)
            assert ours == template, (path, codenames)
            seen_current.update(text for _, current, text in ours if current)
    assert len(seen_current) >= 12  # the walk reached the sections, not only pages that mark nothing


def test_every_link_of_the_table_is_a_page_of_the_account():
    pid = uuid.uuid4()
    for label, view, _, _ in LINKS:
        assert reverse(view, args=[pid]).startswith(f"/a/{pid}/") or label == "Dashboard"


def test_no_account_no_links():
    assert engines["django"].from_string("{% load account_nav %}{% account_nav %}").render({}) == ""


@pytest.mark.django_db
def test_a_subaccount_page_has_no_root_only_links(client, make_member):
    """On real pages: Clients and Agency access are the root's; a subaccount's navigation has neither (a Python
    condition that read ``is_root`` without calling it showed them everywhere)."""
    from members.roles import RoleId
    from tests.factories import AccountFactory

    root = AccountFactory(name="Nav Root")
    sub = AccountFactory(name="Nav Sub", parent=root)
    owner = make_member(root, RoleId.OWNER)
    client.force_login(owner)
    on_root = links(client.get(reverse("accounts:dashboard", args=[root.public_id])).content.decode())
    on_sub = links(client.get(reverse("accounts:dashboard", args=[sub.public_id])).content.decode())
    assert {"Clients", "Agency access"} <= {text for _, _, text in on_root}
    assert "Subaccounts" in {text for _, _, text in on_sub}
    assert not {"Clients", "Agency access"} & {text for _, _, text in on_sub}
