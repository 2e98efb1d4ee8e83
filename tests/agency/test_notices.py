"""Agency access changes reach the people they concern: emails once, after the change commits; a dashboard notice."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from agency import services
from members.roles import RoleId
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(make_member):
    agency = AccountFactory(name="Agency X")
    ann = make_member(agency, RoleId.ADMIN, user=UserFactory(email="ann@x.example"))
    boss = make_member(agency, RoleId.OWNER, user=UserFactory(email="boss@x.example"))
    client_account = AccountFactory(name="Client Co", plan_code="pro")
    olga = make_member(client_account, RoleId.OWNER, user=UserFactory(email="olga@client.example"))
    make_member(client_account, RoleId.MEMBER, user=UserFactory(email="mo@client.example"))
    return dict(agency=agency, ann=ann, boss=boss, client=client_account, olga=olga)


def sent(callbacks_fixture, fn):
    mail.outbox.clear()
    with callbacks_fixture(execute=True):
        result = fn()
    return result, [(m.subject, sorted(m.to)) for m in mail.outbox]


def test_request_decision_and_end_are_emailed_once_to_who_they_concern(pair, django_capture_on_commit_callbacks):
    grant, emails = sent(django_capture_on_commit_callbacks, lambda: services.access_request(
        agency=pair["agency"], client=pair["client"], by=pair["ann"], note="We run your phones"))
    assert emails == [("Agency X asks for agency access to Client Co", ["olga@client.example"])]
    assert "We run your phones" in mail.outbox[0].body
    assert reverse("agency:client-access", kwargs={"account_id": pair["client"].public_id}) in mail.outbox[0].body
    _, emails = sent(django_capture_on_commit_callbacks,
                     lambda: services.access_decide(grant=grant, approve=True, by=pair["olga"]))
    assert emails == [("Client Co approved agency access for Agency X", ["ann@x.example", "boss@x.example"])]
    _, emails = sent(django_capture_on_commit_callbacks,
                     lambda: services.access_revoke(grant=grant, by=pair["olga"]))
    assert emails == [("Agency access to Client Co ended", ["ann@x.example", "boss@x.example",
                                                            "olga@client.example"])]
    assert "ended by the client" in mail.outbox[0].body


def test_declines_are_emailed_and_nothing_goes_out_for_a_refused_change(pair, django_capture_on_commit_callbacks):
    grant = services.access_request(agency=pair["agency"], client=pair["client"], by=pair["ann"])
    _, emails = sent(django_capture_on_commit_callbacks,
                     lambda: services.access_decide(grant=grant, approve=False, by=pair["olga"]))
    assert emails == [("Client Co declined agency access for Agency X", ["ann@x.example", "boss@x.example"])]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        services.access_request(agency=pair["agency"], client=pair["agency"], by=pair["ann"])  # refused
    assert mail.outbox == []


def test_the_governor_sees_a_notice_on_the_dashboard_and_others_do_not(pair, client, make_member):
    services.access_request(agency=pair["agency"], client=pair["client"], by=pair["ann"])
    dashboard = reverse("accounts:dashboard", kwargs={"account_id": pair["client"].public_id})
    client.force_login(pair["olga"])
    page = client.get(dashboard).content.decode()
    assert "Agency X</strong> asks for agency access" in page
    client.force_login(make_member(pair["client"], RoleId.MEMBER))
    assert "asks for agency access" not in client.get(dashboard).content.decode()


def test_grant_rows_offer_only_what_applies_to_their_state(pair, client):
    grant = services.access_request(agency=pair["agency"], client=pair["client"], by=pair["ann"])
    services.access_decide(grant=grant, approve=True, by=pair["olga"])
    services.access_revoke(grant=grant, by=pair["olga"])
    client.force_login(pair["olga"])
    page = client.get(reverse("agency:client-access", kwargs={"account_id": pair["client"].public_id}))
    html = page.content.decode()
    assert "Revoke…" not in html and "Until revoked" not in html and "Ended " in html
