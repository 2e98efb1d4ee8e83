"""Every account page resolves access and the security policy through cheaper paths than the general ones
(issue 14): the plain memberships query with agency ones checked apart (``effective_among``), and the policy read
from the lineage that access resolution already loaded. Each must answer exactly what the general path does."""

import datetime
import itertools

import pytest
from django.utils import timezone

from accounts.access import access_or_404
from agency.models import AgencyGrant
from members.models import Membership, User
from members.roles import RoleId
from security.models import SecurityPolicy, SupportAccess
from security.policy import effective_policy
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

GRANTS = {
    "active": {"status": "active"},
    "expired": {"status": "active", "expires_at": timezone.now() - datetime.timedelta(days=1)},
    "revoked": {"status": "revoked"},
    "none": None,
}


@pytest.mark.parametrize("grant,still_in_agency", list(itertools.product(GRANTS, (True, False))))
def test_effective_among_keeps_exactly_the_memberships_effective_keeps(grant, still_in_agency):
    agency, client_account, own = AccountFactory(name="Agency"), AccountFactory(name="Client"), AccountFactory()
    person = UserFactory()
    if still_in_agency:
        MembershipFactory(user=person, account=agency, role=RoleId.ADMIN)
    MembershipFactory(user=person, account=own, role=RoleId.MEMBER)
    Membership.objects.create(user=person, account=client_account, role=RoleId.AGENCY_ADMIN, is_agency=True,
                              agency_account=agency)
    if GRANTS[grant] is not None:
        AgencyGrant.objects.create(client=client_account, agency=agency, **GRANTS[grant])

    everyone = Membership.objects.filter(user=person)
    fast = Membership.objects.effective_among(list(everyone))
    assert sorted(m.pk for m in fast) == sorted(everyone.effective().values_list("pk", flat=True))
    assert any(m.account_id == client_account.pk for m in fast) == (grant == "active" and still_in_agency)
    reached = User.objects.get(pk=person.pk)
    if grant == "active" and still_in_agency:
        assert access_or_404(reached, client_account.public_id).account == client_account
    else:
        with pytest.raises(Exception, match="No such account"):
            access_or_404(reached, client_account.public_id)


def _summary(policy):
    return ([(p.account.pk, p.require_mfa, p.idle_timeout_minutes, p.session_lifetime_hours) for p in policy.policies],
            [(w.level, w.until, w.source.pk) for w in policy.support])


def test_the_policy_from_the_loaded_lineage_is_the_policy_from_the_database(django_assert_num_queries):
    root = AccountFactory(name="Root")
    middle = AccountFactory(parent=root, name="Middle")
    leaf = AccountFactory(parent=middle, name="Leaf")
    SecurityPolicy.objects.create(account=root, idle_timeout_minutes=60)
    SecurityPolicy.objects.create(account=leaf, require_mfa="admins", session_lifetime_hours=12)
    staff = UserFactory(is_staff=True)
    soon, later = timezone.now() + datetime.timedelta(hours=2), timezone.now() + datetime.timedelta(hours=5)
    # the root's includes subaccounts (covers the leaf), the middle's does not (it does not), the leaf's own
    # two: the later expiry is the one shown; a revoked one counts for nothing
    SupportAccess.objects.create(account=root, requested_by=staff, reason="r", hours=4, status="active", level="read",
                                 expires_at=soon, include_subaccounts=True)
    SupportAccess.objects.create(account=middle, requested_by=staff, reason="r", hours=4, status="active", level="full",
                                 expires_at=later, include_subaccounts=False)
    SupportAccess.objects.create(account=leaf, requested_by=staff, reason="r", hours=4, status="active", level="read",
                                 expires_at=soon)
    SupportAccess.objects.create(account=leaf, requested_by=staff, reason="r", hours=4, status="active", level="full",
                                 expires_at=later)
    SupportAccess.objects.create(account=leaf, requested_by=staff, reason="r", hours=4, status="revoked", level="read",
                                 expires_at=later + datetime.timedelta(hours=1))
    owner = UserFactory()
    MembershipFactory(user=owner, account=root, role=RoleId.OWNER)

    for account in (root, middle, leaf):
        access = access_or_404(User.objects.get(pk=owner.pk), account.public_id)
        with django_assert_num_queries(0):  # the policies and support windows came with the lineage
            fast = effective_policy(access.account, access.ancestors)
        assert _summary(fast) == _summary(effective_policy(AccountFactory._meta.model.objects.get(pk=account.pk)))
        # the lineage as other code loads it (no support windows with it) takes the query and answers the same
        ancestors = tuple(AccountFactory._meta.model.objects.filter(path__in=account.ancestor_paths)
                          .select_related("security_policy").order_by("depth"))
        with django_assert_num_queries(1):
            loaded = effective_policy(account, ancestors)
        assert _summary(loaded) == _summary(fast)
    assert [(w.level, w.source.name) for w in fast.support] == [("read", "Root"), ("full", "Leaf")]
    middle_access = access_or_404(User.objects.get(pk=owner.pk), middle.public_id)
    assert [(w.level, w.source.name) for w in effective_policy(middle, middle_access.ancestors).support] == [
        ("read", "Root"), ("full", "Middle")]  # its own window counts here, not below it
    general = effective_policy(AccountFactory._meta.model.objects.get(pk=leaf.pk))
    assert _summary(fast) == _summary(general)
    assert [p.account.name for p in fast.policies] == ["Root", "Leaf"]
    assert [(w.level, w.source.name) for w in fast.support] == [("read", "Root"), ("full", "Leaf")]
    assert fast.mfa_for_role(RoleId.ADMIN).source.name == "Leaf" and fast.idle_timeout.value == 60
