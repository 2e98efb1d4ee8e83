"""Every changelist costs the same number of queries at 10 and at 1,000 accounts (and rows of each kind):
the budget is pinned, so one more query on any list fails here."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

# Queries per changelist page for a superuser: session and user (2), the page's count and rows (2), then what
# the page adds: accounts the plans of the plan filter, a count capped at 10,000 instead of a COUNT of every
# account, and one query for the names of the page's ancestors; the audit trail its action filter (a skip scan of
# the actions' index; no date hierarchy, which lists the months with events: a scan); users and subscriptions the
# groups and plans of their filters; plans the list_editable formset's choices; billing transfers the date
# hierarchy.
BUDGET = {
    "accounts.account": 6,
    "accounts.auditevent": 5,
    "members.user": 5,
    "members.membership": 4,
    "members.invitation": 4,
    "agency.agencygrant": 4,
    "agency.agencysettings": 4,
    "agency.agencybaseline": 4,
    "billing.plan": 5,
    "billing.subscription": 5,
    "billing.invoice": 4,
    "billing.usagerecord": 4,
    "billing.billingtransfer": 6,
    "workspace.agent": 4,
    "workspace.contact": 4,
    "workspace.conversation": 4,
    "auth.group": 5,
    # django-allauth's and the security app's pages (issue 13)
    "account.emailaddress": 5,
    "mfa.authenticator": 5,
    "usersessions.usersession": 5,
    "security.securityevent": 6,
    "security.securitypolicy": 4,
    "security.supportaccess": 6,  # with its date hierarchy
}


def test_every_registered_model_has_a_budget():
    """A new admin page must be added to this test (and so get a pinned budget)."""
    registered = {f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry}
    assert registered == set(BUDGET)


@pytest.mark.parametrize("label", sorted(BUDGET))
def test_changelist_queries_do_not_grow_with_rows(label, platform, staff_client, count_queries):
    url = reverse(f"admin:{label.replace('.', '_')}_changelist")
    counts = []
    for n in (10, 990):
        platform.add(n)
        counts.append(count_queries(lambda: staff_client.get(url)))
        assert count_queries.last_result.status_code == 200
    assert counts == [BUDGET[label]] * 2
