"""The Subaccounts table and the audit trail draw their rows in Python (issue 14): what a reader sees there is what
the templates drew (links, badges, the expander, the switch form), and every value is escaped."""

import re

import pytest
from django.urls import reverse

from accounts.audit import audit
from accounts.models import AuditEvent
from billing import transfers
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory, plan

pytestmark = pytest.mark.django_db

EVIL = '<b onclick="x()">Evil & Co</b>'


@pytest.fixture
def tree(make_member):
    root = AccountFactory(name="Root Agency")
    evil = AccountFactory(parent=root, name=EVIL)
    AccountFactory(parent=evil, name="Below Evil")
    moving = AccountFactory(parent=root, name="Moving Co")
    owner = make_member(root, RoleId.OWNER)
    transfers.transfer_start(account=moving, by=None, billing_owner_email="x@example.test", plan=plan("agency"))
    return root, evil, moving, owner


def subaccounts_page(client, root, query=""):
    response = client.get(reverse("accounts:subaccount-list", kwargs={"account_id": root.public_id}) + query)
    assert response.status_code == 200
    return response.content.decode()


def test_subaccount_rows_show_links_badges_and_forms_with_every_name_escaped(client, tree):
    root, evil, moving, owner = tree
    client.force_login(owner)
    html = subaccounts_page(client, root)
    assert EVIL not in html and "&lt;b onclick=&quot;x()&quot;&gt;Evil &amp; Co&lt;/b&gt;" in html
    overview = reverse("accounts:subaccount-overview", args=[root.public_id, evil.public_id])
    assert f'<a href="{overview}">&lt;b onclick' in html
    # the expander loads the children in place, keeping the sort
    listing = reverse("accounts:subaccount-list", args=[root.public_id])
    assert f'hx-get="{listing}?under={evil.public_id}&amp;sort=name"' in html
    assert f'<noscript><a href="?under={evil.public_id}">▸</a></noscript>' in html
    assert html.count('class="expander-spacer"') == 1  # Moving Co has no children
    billing = reverse("accounts:subaccount-billing", args=[root.public_id, moving.public_id])
    assert f'href="{billing}#billing-transfer">Transfer pending</a>' in html
    start = reverse("billing:transfer-start", args=[root.public_id, evil.public_id])
    assert f'<a href="{start}">Transfer billing…</a>' in html  # not for Moving Co, whose transfer is open
    assert reverse("billing:transfer-start", args=[root.public_id, moving.public_id]) not in html
    forms = re.findall(r'<form method="post" action="([^"]+)"><input type="hidden" name="csrfmiddlewaretoken" '
                       r'value="[^"]+">\s*<input type="hidden" name="account" value="([^"]+)"><input type="hidden" '
                       r'name="next" value="([^"]+)">', html)
    assert sorted(forms) == sorted((reverse("accounts:switch"), str(a.public_id),
                                    reverse("accounts:dashboard", args=[a.public_id])) for a in (evil, moving))
    assert '<td class="num">' in html and "Parent billing" in html


def test_search_rows_name_the_parent_and_offer_no_expander(client, tree):
    root, evil, _, owner = tree
    client.force_login(owner)
    html = subaccounts_page(client, root, "?q=below")
    assert "Below Evil" in html and '<span class="muted small">in &lt;b onclick' in html
    assert "expander" not in html.split("<tbody>")[1]


def test_a_reader_without_billing_management_is_offered_no_transfer(client, tree, make_member):
    root, *_ = tree
    client.force_login(make_member(root, RoleId.VIEWER))
    assert "Transfer billing…" not in subaccounts_page(client, root)


def test_audit_rows_show_who_and_how_with_every_value_escaped(client, make_member):
    root = AccountFactory(name="Audited")
    owner = make_member(root, RoleId.OWNER)
    audit(account=root, actor=None, action="plan.changed", summary='<img src=x onerror="y()">')
    audit(account=root, actor=UserFactory(email="ag@example.test"), action="member.added", summary="Added",
          via_agency="Big <Agency>")
    AuditEvent.objects.create(account=root, actor_email="staff@example.test", action="support.request",
                              summary="GET /", data={"via_support": "Read-only"}, ip_address="10.0.0.1")
    client.force_login(owner)
    html = client.get(reverse("accounts:audit-log", args=[root.public_id])).content.decode()
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert '<img src=x' not in body and "&lt;img src=x onerror=&quot;y()&quot;&gt;" in body
    assert "<td>system</td>" in body and "<td>—</td>" in body
    assert '<span class="badge">via Big &lt;Agency&gt;</span>' in body
    assert 'staff@example.test <span class="badge">platform support</span>' in body and "<td>10.0.0.1</td>" in body
    assert "<code>plan.changed</code>" in body and "<td>Audited</td>" in body


def test_the_clients_page_lists_parent_billed_subaccounts_with_names_escaped(client, tree):
    root, evil, moving, owner = tree
    client.force_login(owner)
    response = client.get(reverse("agency:clients", args=[root.public_id]))
    assert response.status_code == 200
    table = response.content.decode().split('id="parent-billed"')[1].split("</table>")[0]
    overview = reverse("accounts:subaccount-overview", args=[root.public_id, evil.public_id])
    assert f'<a href="{overview}">&lt;b onclick=&quot;x()&quot;&gt;Evil &amp; Co&lt;/b&gt;</a>' in table
    assert EVIL not in table and "Everyone in Root Agency (inherited)" in table
    assert f'<input type="hidden" name="account" value="{moving.public_id}">' in table
    assert table.count('name="csrfmiddlewaretoken"') == 2
