import datetime
import html
import http.server
import json
import re
import socket
import threading

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from developers import webhooks
from developers.models import Webhook, WebhookDelivery, WebhookEvent
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from workspace.models import Agent, Contact
from workspace.services import conversation_record

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP receiver on 127.0.0.1 started by the test: answers the given status codes in turn (the last one
    repeats) and records every request."""

    def __init__(self, statuses=(200,)):
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?x=1"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*statuses):
        made.append(Receiver(statuses or (200,)))
        return made[-1]

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def local_urls(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the test's own receiver on 127.0.0.1 (never the network)


@pytest.fixture
def account():
    return AccountFactory(name="Hooked")


@pytest.fixture
def owner(account, make_member):
    return make_member(account, RoleId.OWNER)


def record(account, owner, agent=None):
    agent = agent or Agent.objects.create(account=account, name="Receptionist")
    contact = Contact.objects.create(account=account, name="Caller", email=f"c{Contact.objects.count()}@x.test")
    return conversation_record(account=account, agent=agent, contact=contact, by=owner, duration_seconds=65,
                               started_at=timezone.now() - datetime.timedelta(hours=1))


def test_a_delivery_is_signed_as_the_page_documents(client, account, owner, receiver, local_urls,
                                                    django_capture_on_commit_callbacks):
    r = receiver(200)
    hook, secret = webhooks.webhook_create(account=account, by=owner, name="CRM", url=r.url,
                                           events=["conversation.started", "conversation.ended"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(account, owner)
    assert callbacks, "sending waits for the commit (a request never waits for a delivery)"
    deliveries = list(WebhookDelivery.objects.filter(webhook=hook).order_by("event_type"))
    assert [d.event_type for d in deliveries] == ["conversation.ended", "conversation.started"]
    assert not r.requests
    for d in deliveries:
        assert webhooks.deliver(d.pk) == WebhookDelivery.Status.SUCCEEDED
    assert len(r.requests) == 2
    headers, body = r.requests[0]
    envelope = json.loads(body)
    assert set(envelope) == {"event_id", "event_type", "created", "account_id", "account_name", "data"}
    assert envelope["account_id"] == str(account.public_id) and headers["X-Webhook-Id"] == envelope["event_id"]
    # the verification snippet shown on the Webhooks page, run as published
    client.force_login(owner)
    page = client.get(reverse("developers:webhook-list", args=[account.public_id])).content.decode()
    snippet = html.unescape(re.search(r"<pre><code>(.*?)</code></pre>", page, re.S)[1])
    scope = {}
    exec(snippet, scope)  # noqa: S102 - our own page's snippet
    assert scope["verify"](secret, body, headers["X-Webhook-Timestamp"], headers["X-Webhook-Signature"])
    assert not scope["verify"](secret, body + b" ", headers["X-Webhook-Timestamp"], headers["X-Webhook-Signature"])
    assert not scope["verify"]("whsec_other", body, headers["X-Webhook-Timestamp"], headers["X-Webhook-Signature"])


def test_retries_with_backoff_until_the_receiver_succeeds(account, owner, receiver, local_urls,
                                                          django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    r = receiver(500, 503, 200)
    hook, _ = webhooks.webhook_create(account=account, by=owner, name="Flaky", url=r.url,
                                      events=["conversation.ended"])
    with django_capture_on_commit_callbacks(execute=True):
        record(account, owner)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert DBTaskResult.objects.count() == 1  # enqueued for the worker
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.deliver(delivery.pk) == WebhookDelivery.Status.RETRYING
    delivery.refresh_from_db()
    first_wait = (delivery.next_attempt_at - before).total_seconds()
    assert 55 <= first_wait <= 65
    retry = DBTaskResult.objects.order_by("-enqueued_at").first()
    assert retry.run_after is not None and abs((retry.run_after - delivery.next_attempt_at).total_seconds()) < 1
    assert webhooks.deliver(delivery.pk) == WebhookDelivery.Status.RETRYING
    delivery.refresh_from_db()
    assert (delivery.next_attempt_at - timezone.now()).total_seconds() > 250  # backoff grows
    assert webhooks.deliver(delivery.pk) == WebhookDelivery.Status.SUCCEEDED
    log = list(delivery.attempt_log.values_list("number", "response_code"))
    assert log == [(1, 500), (2, 503), (3, 200)]
    assert delivery.attempt_log.get(number=1).response_excerpt == "answered 500"
    hook.refresh_from_db()
    assert len(r.requests) == 3 and all(  # the same event, the same body, each try signed with its own timestamp
        webhooks.verify(hook.secret, body, h["X-Webhook-Timestamp"], h["X-Webhook-Signature"])
        for h, body in r.requests)
    assert len({h["X-Webhook-Id"] for h, _ in r.requests}) == 1
    assert sum(webhooks.BACKOFF) >= 24 * 3600 * 0.9  # about a day of retries


def test_repeated_failures_disable_the_endpoint_and_email_the_admins(account, owner, receiver, local_urls,
                                                                     django_capture_on_commit_callbacks):
    r = receiver(500)
    hook, _ = webhooks.webhook_create(account=account, by=owner, name="Broken", url=r.url,
                                      events=["member.added"])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(webhooks.DISABLE_AFTER_FAILED_DELIVERIES):
            MembershipFactory(user=UserFactory(), account=account, role=RoleId.VIEWER)
    deliveries = WebhookDelivery.objects.filter(webhook=hook)
    assert deliveries.count() == webhooks.DISABLE_AFTER_FAILED_DELIVERIES
    with django_capture_on_commit_callbacks(execute=True):
        for d in deliveries:
            WebhookDelivery.objects.filter(pk=d.pk).update(attempts=len(webhooks.BACKOFF))  # its last try
            assert webhooks.deliver(d.pk) == WebhookDelivery.Status.FAILED
    hook.refresh_from_db()
    assert not hook.is_active and "failed deliveries" in hook.disabled_reason
    assert [m.to for m in mail.outbox if "disabled" in m.subject] == [[owner.email]]
    MembershipFactory(user=UserFactory(), account=account, role=RoleId.VIEWER)
    assert deliveries.count() == webhooks.DISABLE_AFTER_FAILED_DELIVERIES  # nothing more for a disabled endpoint


class TestSsrf:
    @pytest.fixture(autouse=True)
    def production(self, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    @pytest.mark.parametrize("url", [
        "http://hooks.example.com/in", "https://127.0.0.1/in", "https://10.1.2.3/in", "https://192.168.0.1/",
        "https://169.254.169.254/latest/meta-data", "https://[::1]/", "https://[fe80::1]/", "https://localhost/",
        "https://0.0.0.0/", "https://[::ffff:127.0.0.1]/", "https://user:pw@hooks.example.com/"])
    def test_private_loopback_link_local_and_plain_http_refused_on_save(self, account, owner, url):
        with pytest.raises(ValidationError) as exc:
            webhooks.webhook_create(account=account, by=owner, name="x", url=url, events=["member.added"])
        assert "url" in exc.value.error_dict

    def test_a_name_resolving_inside_is_refused_at_delivery(self, account, owner, receiver, monkeypatch):
        r = receiver(200)
        hook, _ = webhooks.webhook_create(account=account, by=owner, name="Rebind",
                                          url="https://rebind.example.test/in", events=["member.added"])
        port = r.server.server_port
        monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
        MembershipFactory(user=UserFactory(), account=account, role=RoleId.VIEWER)
        delivery = WebhookDelivery.objects.get(webhook=hook)
        assert webhooks.deliver(delivery.pk) == WebhookDelivery.Status.RETRYING
        attempt = delivery.attempt_log.get()
        assert "Refused" in attempt.error and attempt.response_code is None
        assert not r.requests


def test_no_delivery_of_another_accounts_events_and_agent_scope_holds(account, owner, local_urls, make_member):
    child = AccountFactory(parent=account)
    other = AccountFactory()
    other_owner = make_member(other, RoleId.OWNER)
    scoped_agent = Agent.objects.create(account=account, name="Scoped")
    everything, _ = webhooks.webhook_create(account=account, by=owner, name="All", url="https://a.example.com/",
                                            events=["conversation.ended", "subaccount.created"])
    scoped, _ = webhooks.webhook_create(account=account, by=owner, name="One agent", url="https://b.example.com/",
                                        events=["conversation.ended"], agents=[scoped_agent])
    record(other, other_owner)
    record(child, owner)
    assert not WebhookDelivery.objects.exists()
    record(account, owner)  # another agent
    assert list(WebhookDelivery.objects.values_list("webhook__name", flat=True)) == ["All"]
    record(account, owner, agent=scoped_agent)
    assert WebhookDelivery.objects.filter(webhook=scoped).count() == 1
    assert json.loads(WebhookDelivery.objects.filter(webhook=scoped).get().body)["account_id"] == \
        str(account.public_id)
    with pytest.raises(ValidationError):  # another account's agent cannot scope this endpoint
        webhooks.webhook_create(account=account, by=owner, name="x", url="https://c.example.com/",
                                events=["conversation.ended"], agents=[Agent.objects.create(account=other, name="o")])


def test_a_parents_endpoint_gets_none_of_its_subaccounts_events(account, owner, local_urls):
    """Decided (developers/webhooks.py): events stay in their account; a subaccount has its own endpoints."""
    from members.services import membership_add, membership_remove

    child = AccountFactory(parent=account)
    grandchild = AccountFactory(parent=child)
    webhooks.webhook_create(account=account, by=owner, name="Parent", url="https://p.example.com/",
                            events=[e for e, _ in WebhookEvent.choices])
    for below in (child, grandchild):
        membership = membership_add(account=below, user=UserFactory(), role=RoleId.MEMBER, by=owner)
        membership_remove(membership=membership, by=owner)
        record(below, owner)
    assert not WebhookDelivery.objects.exists()
    own, _ = webhooks.webhook_create(account=child, by=owner, name="Child's own", url="https://c.example.com/",
                                     events=["member.added"])  # set up from above by the parent's Owner
    membership_add(account=child, user=UserFactory(), role=RoleId.MEMBER, by=owner)
    assert list(WebhookDelivery.objects.values_list("webhook", "account")) == [(own.pk, child.pk)]


def u(name, account, hook=None, delivery=None):
    args = [account.public_id] + ([hook.public_id] if hook else []) + ([delivery.public_id] if delivery else [])
    return reverse(f"developers:webhook-{name}", args=args)


class TestPages:
    def test_create_shows_the_secret_once_then_edit_regenerate_redeliver_delete(self, client, account, owner,
                                                                                  django_capture_on_commit_callbacks):
        client.force_login(owner)
        response = client.post(u("create", account), {"name": "CRM", "url": "https://crm.example.com/hook",
                                                      "events": ["member.added"], "is_active": "on"})
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        hook = Webhook.objects.get(account=account)
        assert hook.secret in response.content.decode()
        assert hook.secret not in client.get(u("list", account)).content.decode()
        assert client.post(u("edit", account, hook), {"name": "CRM 2", "url": "https://crm.example.com/hook",
                                                      "events": ["member.added", "member.removed"]}).status_code == 302
        hook.refresh_from_db()
        assert hook.name == "CRM 2" and not hook.is_active and hook.events == ["member.added", "member.removed"]
        old = hook.secret
        response = client.post(u("secret", account, hook))
        hook.refresh_from_db()
        assert hook.secret != old and hook.secret in response.content.decode()
        delivery = WebhookDelivery.objects.create(webhook=hook, account=account, event_type="member.added", body="{}")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert client.post(u("redeliver", account, hook, delivery)).status_code == 302
        assert len(callbacks) == 1
        assert "member.added" in client.get(u("deliveries", account, hook)).content.decode()
        assert client.post(u("delete", account, hook)).status_code == 302
        assert not Webhook.objects.exists()

    def test_another_tenants_webhook_and_delivery_are_404(self, client, account, owner, make_member):
        other = AccountFactory()
        other_owner = make_member(other, RoleId.OWNER)
        hook, _ = webhooks.webhook_create(account=other, by=other_owner, name="Theirs",
                                          url="https://t.example.com/", events=["member.added"])
        delivery = WebhookDelivery.objects.create(webhook=hook, account=other, event_type="member.added", body="{}")
        mine, _ = webhooks.webhook_create(account=account, by=owner, name="Mine", url="https://m.example.com/",
                                          events=["member.added"])
        client.force_login(owner)
        for name in ("edit", "delete", "deliveries"):
            assert client.get(u(name, account, hook)).status_code == 404
        assert client.post(u("secret", account, hook)).status_code == 404
        assert client.post(u("redeliver", account, mine, delivery)).status_code == 404
        assert client.post(u("redeliver", account, hook, delivery)).status_code == 404
        assert client.get(u("list", other)).status_code == 404

    @pytest.mark.parametrize("role,allowed", [(RoleId.ADMIN, True), (RoleId.AGENCY_ADMIN, True),
                                              (RoleId.MEMBER, False), (RoleId.VIEWER, False)])
    def test_manage_webhooks_per_role(self, client, account, owner, make_member, role, allowed):
        hook, _ = webhooks.webhook_create(account=account, by=owner, name="H", url="https://h.example.com/",
                                          events=["member.added"])
        client.force_login(make_member(account, role))
        for url in (u("list", account), u("create", account), u("edit", account, hook), u("deliveries", account, hook)):
            assert client.get(url).status_code == (200 if allowed else 403)
        if not allowed:
            with pytest.raises(PermissionDenied):
                webhooks.webhook_create(account=account, by=type(owner).objects.get(
                    memberships__account=account, memberships__role=role), name="x",
                    url="https://x.example.com/", events=["member.added"])

    def test_pages_cost_a_fixed_number_of_queries(self, client, account, owner, count_queries):
        client.force_login(owner)
        hook, _ = webhooks.webhook_create(account=account, by=owner, name="H", url="https://h.example.com/",
                                          events=["member.added"])

        def grow(n):
            for i in range(n):
                webhooks.webhook_create(account=account, by=owner, name=f"H{i}", url="https://h.example.com/",
                                        events=["member.added"])
                d = WebhookDelivery.objects.create(webhook=hook, account=account, event_type="member.added",
                                                   body="{}")
                d.attempt_log.create(number=1, response_code=500)

        client.get(u("list", account))
        grow(2)
        small = (count_queries(lambda: client.get(u("list", account))),
                 count_queries(lambda: client.get(u("deliveries", account, hook))))
        grow(15)
        large = (count_queries(lambda: client.get(u("list", account))),
                 count_queries(lambda: client.get(u("deliveries", account, hook))))
        assert small == large and max(large) <= 10, (small, large)


def test_agency_access_changes_reach_both_sides(account, owner, make_member):
    from agency.services import access_decide, access_request

    agency = AccountFactory(name="Agency X")
    agency_owner = make_member(agency, RoleId.OWNER)
    on_client, _ = webhooks.webhook_create(account=account, by=owner, name="Client side",
                                           url="https://c.example.com/", events=["agency_access.changed"])
    on_agency, _ = webhooks.webhook_create(account=agency, by=agency_owner, name="Agency side",
                                           url="https://a.example.com/", events=["agency_access.changed"])
    grant = access_request(agency=agency, client=account, by=agency_owner)
    access_decide(grant=grant, approve=True, by=type(owner).objects.get(pk=owner.pk))
    for hook in (on_client, on_agency):
        bodies = [json.loads(d.body) for d in WebhookDelivery.objects.filter(webhook=hook).order_by("pk")]
        assert [b["data"]["status"] for b in bodies] == ["requested", "active"]
        assert {b["account_id"] for b in bodies} == {str(hook.account.public_id)}


class TestAnEndpointSendsOnlyWhileItsPeopleManageDeveloperTools:
    """DESIGN rule 8 (delegated access never outlives its source): an endpoint sends this account's events to the
    address its people chose, signed with a secret they knew. Whoever last set the address or the secret must
    still manage developer tools here, or nothing more is sent (the rule in ``developers.webhooks.unanswered``,
    checked when an event is recorded and before every attempt)."""

    @pytest.fixture
    def world(self, account, owner, make_member):
        from agency import services as agency

        northwind = AccountFactory(name="Northwind Agency")
        adam = make_member(northwind, RoleId.ADMIN)
        grant = agency.access_request(agency=northwind, client=account, by=adam)
        agency.access_decide(grant=grant, approve=True, by=owner)
        grant.refresh_from_db()
        return dict(adam=fresh(adam), grant=grant)

    @staticmethod
    def revoke(world, owner):
        from agency import services as agency

        agency.access_revoke(grant=world["grant"], by=fresh(owner), remove=[])

    def test_an_agency_users_endpoint_stops_when_the_agencys_access_ends(self, account, owner, world,
                                                                         django_capture_on_commit_callbacks):
        hook, _ = webhooks.webhook_create(account=account, by=world["adam"], name="Agency CRM",
                                          url="https://agency.example.com/h", events=["conversation.ended"])
        record(account, owner)
        assert WebhookDelivery.objects.filter(webhook=hook).count() == 1  # while the grant is in force
        self.revoke(world, owner)
        with django_capture_on_commit_callbacks(execute=True):
            record(account, owner)
        assert WebhookDelivery.objects.filter(webhook=hook).count() == 1  # nothing new
        hook.refresh_from_db()
        assert not hook.is_active and hook.disabled_reason == (
            f"Turned off: {world['adam'].email} set its address and no longer manages developer tools here.")
        assert AuditEvent.objects.filter(account=account, action="webhook.disabled").count() == 1
        assert [m.to for m in mail.outbox if "turned off" in m.subject] == [[owner.email]]
        record(account, owner)  # once off, it stays off and says so once
        assert AuditEvent.objects.filter(account=account, action="webhook.disabled").count() == 1

    def test_what_was_queued_before_the_revocation_is_not_sent_after_it(self, account, owner, world, receiver,
                                                                        local_urls):
        r = receiver(200)
        hook, _ = webhooks.webhook_create(account=account, by=world["adam"], name="Agency CRM", url=r.url,
                                          events=["conversation.ended"])
        record(account, owner)
        delivery = WebhookDelivery.objects.get(webhook=hook)
        self.revoke(world, owner)
        for manual in (False, True):  # a retry, and a manager's "send again"
            assert webhooks.deliver(delivery.pk, manual) == WebhookDelivery.Status.FAILED
        assert not r.requests
        assert delivery.attempt_log.first().error.startswith("Not sent: ")

    @pytest.mark.parametrize("change", ["address", "secret"])
    def test_an_agency_user_who_changed_the_owners_endpoint_takes_it_with_them(self, account, owner, world,
                                                                                change):
        hook, _ = webhooks.webhook_create(account=account, by=owner, name="Owner's", url="https://o.example.com/",
                                          events=["conversation.ended"])
        if change == "address":
            webhooks.webhook_update(webhook=hook, by=world["adam"], name=hook.name, url="https://agency.example/h",
                                    events=hook.events, is_active=True)
        else:
            webhooks.webhook_regenerate_secret(webhook=hook, by=world["adam"])
        webhooks.webhook_update(webhook=Webhook.objects.get(pk=hook.pk), by=fresh(owner), name="Renamed",
                                url=Webhook.objects.get(pk=hook.pk).url, events=hook.events, is_active=True)
        self.revoke(world, owner)  # renaming it did not make the Owner answer for what the agency user set
        record(account, owner)
        assert not WebhookDelivery.objects.filter(webhook=hook).exists()
        hook.refresh_from_db()
        assert not hook.is_active and f"set its {'address' if change == 'address' else 'signing secret'}" in \
            hook.disabled_reason

    def test_turning_it_on_again_makes_the_person_who_does_answer_for_it(self, account, owner, world):
        hook, _ = webhooks.webhook_create(account=account, by=world["adam"], name="Agency CRM",
                                          url="https://agency.example.com/h", events=["conversation.ended"])
        self.revoke(world, owner)
        record(account, owner)
        hook.refresh_from_db()
        assert not hook.is_active
        webhooks.webhook_update(webhook=hook, by=fresh(owner), name=hook.name, url=hook.url, events=hook.events,
                                is_active=True)
        hook.refresh_from_db()
        assert hook.is_active and hook.url_set_by == owner and hook.secret_set_by == owner
        record(account, owner)
        assert WebhookDelivery.objects.filter(webhook=hook).count() == 1

    def test_a_leaver_and_a_demoted_admin_stop_their_endpoints_the_platforms_sends_on(self, account, owner,
                                                                                     make_member):
        from members.models import Membership
        from members.services import membership_change_role, membership_remove

        leaver, demoted = make_member(account, RoleId.ADMIN), make_member(account, RoleId.ADMIN)
        hooks = {who: webhooks.webhook_create(account=account, by=by, name=who, url=f"https://{who}.example.com/",
                                              events=["conversation.ended"])[0]
                 for who, by in (("leaver", leaver), ("demoted", demoted), ("platform", None))}
        membership_remove(membership=Membership.objects.get(user=leaver, account=account), by=fresh(owner))
        membership_change_role(membership=Membership.objects.get(user=demoted, account=account),
                               role=RoleId.MEMBER, by=fresh(owner))
        record(account, owner)
        sent = set(WebhookDelivery.objects.values_list("webhook__name", flat=True))
        assert sent == {"platform"}
        assert not Webhook.objects.get(pk=hooks["leaver"].pk).is_active
        assert not Webhook.objects.get(pk=hooks["demoted"].pk).is_active

    def test_a_person_who_answers_for_an_endpoint_cannot_be_deleted_into_the_platform(self, account, owner):
        from django.db.models import ProtectedError

        webhooks.webhook_create(account=account, by=owner, name="Owner's", url="https://o.example.com/",
                                events=["conversation.ended"])
        with pytest.raises(ProtectedError):
            type(owner).objects.get(pk=owner.pk).delete()


def fresh(user):
    return type(user).objects.get(pk=user.pk)
