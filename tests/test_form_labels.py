"""Every visible form control on the main pages has a name a screen reader announces (issue 16 item 8): a
<label for>, a wrapping <label>, aria-label or aria-labelledby. Hidden inputs and buttons need none."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from agency import services as agency_services
from members.roles import RoleId
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from workspace.models import Agent, Contact

pytestmark = pytest.mark.django_db

UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class Controls(HTMLParser):
    """Collects the form controls of a page and the labels that name them."""

    def __init__(self):
        super().__init__()
        self.controls, self.label_for, self.ids = [], set(), set()
        self.open_labels = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and (attrs.get("type") or "text").lower() in UNLABELLED_TYPES:
                return
            if "hidden" in attrs:
                return
            self.controls.append((tag, attrs, self.open_labels > 0))

    def handle_endtag(self, tag):
        if tag == "label" and self.open_labels:
            self.open_labels -= 1

    def unlabelled(self) -> list[str]:
        missing = []
        for tag, attrs, wrapped in self.controls:
            named = (wrapped or attrs.get("id") in self.label_for or (attrs.get("aria-label") or "").strip()
                     or any(i in self.ids for i in (attrs.get("aria-labelledby") or "").split()))
            if not named:
                missing.append(f"<{tag} name={attrs.get('name')!r} id={attrs.get('id')!r}>")
        return missing


def unlabelled_controls(html: str) -> list[str]:
    parser = Controls()
    parser.feed(html)
    return parser.unlabelled()


def test_the_checker_finds_an_unlabelled_control():
    assert unlabelled_controls('<input name="a"><input type="hidden" name="b">') == ["<input name='a' id=None>"]
    assert unlabelled_controls('<label for="x">X</label><input id="x"><label>Y <select name="y"></select></label>'
                               '<textarea aria-label="Z"></textarea><span id="w">W</span>'
                               '<input aria-labelledby="w">') == []


@pytest.fixture
def world(client):
    agency = AccountFactory(name="Northwind")
    sub = AccountFactory(parent=agency, name="Acme")
    owner = UserFactory()
    MembershipFactory(user=owner, account=agency, role=RoleId.OWNER)
    MembershipFactory(user=UserFactory(), account=agency, role=RoleId.MEMBER)
    agent = Agent.objects.create(account=agency, name="Front desk")
    Contact.objects.create(account=agency, name="Jane", email="jane@example.com")
    client_account = AccountFactory(name="Client Co")
    MembershipFactory(user=UserFactory(), account=client_account, role=RoleId.OWNER)
    agency_services.access_request(agency=agency, client=client_account, by=owner)
    client.force_login(owner)
    return {"agency": agency, "sub": sub, "agent": agent}


PAGES = [
    ("accounts:dashboard", {}), ("accounts:settings", {}), ("accounts:subaccount-list", {}),
    ("accounts:subaccount-create", {}), ("accounts:subaccount-defaults", {}), ("accounts:audit-log", {}),
    ("accounts:subaccount-limits", {"sub_id": "sub"}), ("accounts:subaccount-permissions", {"sub_id": "sub"}),
    ("accounts:subaccount-move", {"sub_id": "sub"}), ("accounts:subaccount-status", {"sub_id": "sub"}),
    ("accounts:subaccount-members", {"sub_id": "sub"}),
    ("members:list", {}), ("members:access", {}), ("members:invite-bulk", {}),
    ("workspace:agent-list", {}), ("workspace:agent-create", {}), ("workspace:contact-list", {}),
    ("workspace:contact-create", {}), ("workspace:conversation-list", {}), ("workspace:conversation-create", {}),
    ("workspace:agent-edit", {"pk": "agent"}),
    ("developers:apikey-list", {}), ("developers:apikey-create", {}), ("developers:webhook-create", {}),
    ("agency:clients", {}), ("agency:request", {}), ("agency:baseline", {}),
    ("billing:overview", {}), ("billing:plans", {}),
]


@pytest.mark.parametrize(("name", "extra"), PAGES, ids=[name for name, _ in PAGES])
def test_every_control_on_the_page_has_a_label(client, world, name, extra):
    kwargs = {"account_id": world["agency"].public_id}
    kwargs.update({key: world[value].public_id for key, value in extra.items()})
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 200, name
    assert unlabelled_controls(response.content.decode()) == []


@pytest.mark.parametrize("name", ["profile", "login", "signup", "password_reset"])
def test_pages_outside_an_account_too(client, world, name):
    if name in ("login", "signup", "password_reset"):
        client.logout()
    response = client.get(reverse(name))
    assert response.status_code == 200, name
    assert unlabelled_controls(response.content.decode()) == []
