import base64
import datetime
import hashlib
import hmac
import random

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_create, subaccount_create
from billing.models import Plan
from billing.services import subscription_start
from developers import keys
from developers.models import ApiKey, Webhook
from developers.webhooks import webhook_create
from members.models import Membership, User
from members.roles import RoleId
from members.services import membership_add
from trust.models import ExpiryAction, PublicTrustPage
from trust.public import page_save
from trust.retention import Choice, policy_update
from workspace.models import Agent, Contact
from workspace.services import agent_create, contact_create, conversation_record

DEMO_PASSWORD = "demo-pass-2026"
DEMO_KEY_PREFIX = "demo0001"
DEMO_RECEIVER_URL = "http://127.0.0.1:8001/webhooks"  # `manage.py webhook_receiver` (started by `make run`)

PEOPLE = [
    # email, name, what they see
    ("owner@northwind.example", "Nora Owner", "Owner of Northwind Agency: every subaccount below it"),
    ("admin@northwind.example", "Adam Admin", "Admin of Northwind Agency"),
    ("member@northwind.example", "Mia Member", "Member of Northwind Agency (no admin pages)"),
    ("owner@acme.example", "Alice Acme", "Owner of the Acme Corp subaccount only"),
    ("viewer@acme.example", "Victor Viewer", "Viewer in Acme Sales EMEA (level 4)"),
    ("owner@blueharbor.example", "Bea Harbor", "Owner of Blue Harbor Dental, a client-owned account under "
                                               "Northwind's agency access"),
    ("owner@harborfitness.example", "Hal Fitness", "Owner of Harbor Fitness, with a pending agency request"),
    ("owner@contoso.example", "Cora Contoso", "Owner of Contoso Clinics: a former Northwind subaccount, independent "
                                              "after a billing transfer, Northwind keeping agency access"),
    ("owner@globex.example", "Gil Globex", "Globex Retail's billing transfer waits for this person to accept"),
    ("support@platform.example", "Sam Support", "Platform staff (Support group in /admin/): has asked Initech "
                                                "Clinics' Owner for support access"),
]

# (name, parent name or None); three levels of nesting below the agency.
TREE = [
    ("Northwind Agency", None),
    ("Acme Corp", "Northwind Agency"),
    ("Acme Corp - Sales", "Acme Corp"),
    ("Acme Sales - EMEA", "Acme Corp - Sales"),
    ("Acme Corp - Support", "Acme Corp"),
    ("Globex Retail", "Northwind Agency"),
    ("Initech Clinics", "Northwind Agency"),
    ("Initech Clinics - North", "Initech Clinics"),
    ("Contoso Clinics", "Northwind Agency"),
    ("Contoso Clinics - Downtown", "Contoso Clinics"),
]

ROLES = [
    ("owner@northwind.example", "Northwind Agency", RoleId.OWNER),
    ("admin@northwind.example", "Northwind Agency", RoleId.ADMIN),
    ("member@northwind.example", "Northwind Agency", RoleId.MEMBER),
    ("owner@acme.example", "Acme Corp", RoleId.OWNER),
    ("viewer@acme.example", "Acme Sales - EMEA", RoleId.VIEWER),
    ("owner@contoso.example", "Contoso Clinics", RoleId.OWNER),
]


class Command(BaseCommand):
    help = "Create the demo agency, its nested subaccounts and people in several roles. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {}
        for email, name, _ in PEOPLE:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name,
                                                email_verified=True)
            users[email] = user

        owner = users["owner@northwind.example"]
        accounts: dict[str, Account] = {}
        for name, parent_name in TREE:
            parent = accounts.get(parent_name)
            existing = (Account.objects.filter(name=name, parent=parent).first()  # or independent since (transfer)
                        or Account.objects.filter(name=name, billing_transfers__status="completed").first())
            if existing:
                accounts[name] = existing
            elif parent is None:
                accounts[name] = account_create(name=name, owner=owner)
                subscription_start(account=accounts[name], plan=Plan.objects.get(code="agency"))
                Account.objects.filter(pk=accounts[name].pk).update(default_limit_agents=10, default_limit_members=25)
                accounts[name].refresh_from_db()
            else:
                accounts[name] = subaccount_create(parent=parent, name=name, by=owner, owner=None)

        client = Account.objects.filter(name="Blue Harbor Dental", parent=None).first()
        if client is None:
            client = account_create(name="Blue Harbor Dental", owner=users["owner@blueharbor.example"])
            subscription_start(account=client, plan=Plan.objects.get(code="pro"))
        accounts[client.name] = client

        demo_key = self._developers(accounts["Northwind Agency"], owner)

        # A minutes pool on Acme Corp, so limits show on its Limits tab and in blocked conversations.
        Account.objects.filter(pk=accounts["Acme Corp"].pk).update(limit_minutes=400, limit_agents=5)
        for account in accounts.values():
            account.refresh_from_db()
            self._workspace(account, owner if account.path.startswith(accounts["Northwind Agency"].path)
                            else users["owner@blueharbor.example"])

        for email, account_name, role in ROLES:
            account = accounts[account_name]
            if not Membership.objects.filter(user=users[email], account=account).exists():
                membership_add(account=account, user=users[email], role=role, by=None)

        self._last_month(accounts, owner)
        self._trust_center(accounts["Northwind Agency"], owner)
        self._external_ids([*TREE, ("Blue Harbor Dental", None), ("Harbor Fitness", None)])

        # Fresh user objects: access is cached per user object, and memberships changed above.
        self._agency(accounts["Northwind Agency"], client, {u.email: u for u in User.objects.all()})
        self._transfers(accounts, {u.email: u for u in User.objects.all()})
        totp_secret = self._security(accounts, {u.email: u for u in User.objects.all()})

        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000/accounts/login/"))
        self.stdout.write(f"API key of Northwind Agency (acts as owner@northwind.example): {demo_key}")
        self.stdout.write("  curl -H 'X-API-Key: " + demo_key + "' http://127.0.0.1:8000/api/v1/accounts/current")
        self.stdout.write(f"Password for every demo login: {DEMO_PASSWORD}")
        self.stdout.write(f"Contoso Clinics requires two-factor for Owners and Admins: owner@contoso.example signs in "
                          f"with an authenticator code. TOTP secret {totp_secret} (add it to an authenticator app, or "
                          f"run `.venv/bin/python manage.py demo_totp` for the current code).")
        self.stdout.write("Northwind's public trust page: http://127.0.0.1:8000/trust/northwind/")
        for email, _, what in PEOPLE:
            self.stdout.write(f"  {email:<28} {what}")

    @staticmethod
    def _demo_secret(purpose: str) -> str:
        """The same demo secret on every run (derived from SECRET_KEY), so `make run` can print it again."""
        digest = hmac.new(settings.SECRET_KEY.encode(), f"demo:{purpose}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _developers(self, agency: Account, owner) -> str:
        """One API key on Northwind (its full value printed) and one webhook to the local receiver; the
        conversations seeded next give its delivery log something to show once the worker has run."""
        secret = self._demo_secret("api-key")
        if not ApiKey.objects.filter(prefix=DEMO_KEY_PREFIX).exists():
            ApiKey.objects.create(account=agency, prefix=DEMO_KEY_PREFIX, label="Demo integration",
                                  secret_hash=keys.secret_hash(DEMO_KEY_PREFIX, secret), created_by=owner)
        if not Webhook.objects.filter(account=agency, url=DEMO_RECEIVER_URL).exists():
            webhook, _ = webhook_create(account=agency, by=None, name="Local receiver", url=DEMO_RECEIVER_URL,
                                        events=["conversation.started", "conversation.ended", "member.added",
                                                "subaccount.created", "invoice.closed"])
            Webhook.objects.filter(pk=webhook.pk).update(secret="whsec_" + self._demo_secret("webhook"))
        return keys.full_key(DEMO_KEY_PREFIX, secret)

    def _agency(self, agency: Account, client: Account, users) -> None:
        """Hybrid: Northwind serves Blue Harbor Dental through agency access (Adam is its agency user),
        and has asked Harbor Fitness for access."""
        from agency.models import AgencyBaseline, AgencyGrant
        from agency.services import access_decide, access_request

        AgencyBaseline.objects.get_or_create(account=agency, defaults={"matrix": {
            "agents": "full", "conversations": "full", "contacts": "full", "settings": "read", "members": "full",
            "subaccounts": "none", "trust_center": "read", "developer_tools": "none", "billing": "full",
            "usage": "read"}})
        owner, agent_user = users["owner@northwind.example"], users["admin@northwind.example"]
        if not AgencyGrant.objects.filter(client=client, agency=agency).exists():
            grant = access_request(agency=agency, client=client, by=agent_user,
                                   note="Northwind builds and maintains your receptionist agents.")
            access_decide(grant=grant, approve=True, by=users["owner@blueharbor.example"])
        fitness = Account.objects.filter(name="Harbor Fitness", parent=None).first()
        if fitness is None:
            fitness = account_create(name="Harbor Fitness", owner=users["owner@harborfitness.example"])
            access_request(agency=agency, client=fitness, by=owner, note="Let us set up your booking line.")

    def _transfers(self, accounts: dict, users) -> None:
        """Billing transfers: Contoso Clinics went independent with Northwind keeping agency access;
        Globex Retail's transfer waits for its new billing owner."""
        from billing.models import BillingTransfer
        from billing.transfers import transfer_accept, transfer_start, transfer_url

        contoso, globex = accounts["Contoso Clinics"], accounts["Globex Retail"]
        owner = users["owner@northwind.example"]
        if not BillingTransfer.objects.filter(account=contoso).exists():
            transfer = transfer_start(account=contoso, by=owner, billing_owner_email="owner@contoso.example",
                                      plan=Plan.objects.get(code="agency"), keep_agency_access=True,
                                      agency_people=[users["admin@northwind.example"]])
            transfer_accept(transfer=transfer, user=users["owner@contoso.example"], contact_name="Cora Contoso",
                            contact_email="billing@contoso.example")
        pending = BillingTransfer.objects.filter(account=globex, status="pending").first()
        if pending is None and not BillingTransfer.objects.filter(account=globex).exists():
            pending = transfer_start(account=globex, by=owner, billing_owner_email="owner@globex.example",
                                     plan=Plan.objects.get(code="pro"))
        if pending is not None:
            self.stdout.write(f"Globex Retail's pending billing transfer (sign in as owner@globex.example): "
                              f"{transfer_url(pending)}")

    @staticmethod
    def demo_totp_secret() -> str:
        """The demo Contoso owner's TOTP secret: base32, the same on every run (``demo_totp`` prints its code)."""
        digest = hmac.new(settings.SECRET_KEY.encode(), b"demo:totp", hashlib.sha256).digest()
        return base64.b32encode(digest[:20]).decode()

    def _security(self, accounts: dict, users) -> str:
        """Contoso Clinics requires two-factor for Owners and Admins (no deadline: in force), and its owner has
        TOTP with recovery codes; so Northwind's agency users meet that policy when they open Contoso. Initech
        Clinics' Owner has a pending support-access request from platform staff."""
        from allauth.mfa.models import Authenticator
        from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
        from allauth.mfa.totp.internal.auth import TOTP
        from django.contrib.auth.models import Group

        from members.staff import SUPPORT, sync_staff_groups
        from security.models import SecurityPolicy, SupportAccess
        from security.support import support_request

        contoso_owner = users["owner@contoso.example"]
        secret = self.demo_totp_secret()
        if not Authenticator.objects.filter(user=contoso_owner, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(contoso_owner, secret)
            RecoveryCodes.activate(contoso_owner)
        # Written as data: Northwind's agency settings keep Contoso's settings read-only for its own members.
        SecurityPolicy.objects.update_or_create(account=accounts["Contoso Clinics"],
                                                defaults={"require_mfa": SecurityPolicy.MfaScope.ADMINS})

        staff = users["support@platform.example"]
        if not staff.is_staff:
            staff.is_staff = True
            staff.save(update_fields=["is_staff"])
            sync_staff_groups()
            staff.groups.add(Group.objects.get(name=SUPPORT))
        initech = accounts["Initech Clinics"]
        if not SupportAccess.objects.filter(account=initech).exists():
            support_request(account=initech, by=staff, level=SupportAccess.Level.READ, hours=24,
                            reason="Customer reports calls dropping after the greeting; need to read the agent setup.")
        return secret

    def _external_ids(self, names) -> None:
        """The demo's own identifiers (as a CRM would have them), so export_accounts → provision_accounts shows
        idempotent reruns on the demo: "northwind-agency", "acme-corp", …"""
        from django.utils.text import slugify

        for name, _ in names:
            Account.objects.filter(name=name, external_id="").update(external_id=slugify(name))

    def _last_month(self, accounts: dict, by) -> None:
        """Conversations last month in the agency's tree, and that period closed into an invoice."""
        from billing.models import Invoice, period_start
        from billing.services import invoice_close

        agency = accounts["Northwind Agency"]
        last_period = period_start(period_start() - datetime.timedelta(days=1))
        if Invoice.objects.filter(account=agency, period=last_period).exists():
            return
        rng = random.Random("last month")
        for account in accounts.values():
            if not account.path.startswith(agency.path):
                continue
            agent = Agent.objects.in_account(account).first()
            contact = Contact.objects.in_account(account).first()
            for _ in range(rng.randrange(20, 40)):
                start = datetime.datetime.combine(last_period, datetime.time(9), tzinfo=datetime.UTC) + \
                    datetime.timedelta(days=rng.randrange(0, 27), minutes=rng.randrange(0, 600))
                conversation_record(account=account, agent=agent, contact=contact, started_at=start,
                                    duration_seconds=rng.randrange(60, 1800), by=by)
        for root in (agency, accounts["Blue Harbor Dental"]):
            invoice_close(root=root, period=last_period)

    def _trust_center(self, agency: Account, owner) -> None:
        """Northwind's retention policy (IP addresses locked for every subaccount) and its public trust page."""
        if PublicTrustPage.objects.filter(account=agency).exists():
            return
        policy_update(account=agency, by=owner, choices={
            "transcripts": Choice("1y", ExpiryAction.ANONYMISE), "recordings": Choice("90d"),
            "ip_location": Choice("90d", ExpiryAction.ANONYMISE, is_locked=True)})
        page_save(account=agency, by=owner, slug="northwind", is_enabled=True, company_name="Northwind Agency",
                  privacy_policy_url="https://northwind.example/privacy", show_company_name=True,
                  show_legal_links=True, subprocessors=["Stripe — payments", "Twilio — telephony"],
                  show_subprocessors=True, ai_providers=["OpenAI — language model", "ElevenLabs — voices"],
                  show_ai_providers=True, show_retention=True, security_contact="security@northwind.example",
                  show_security_contact=True, show_last_updated=True)

    def _workspace(self, account: Account, by) -> None:
        """Two agents, a few contacts and a month of conversations per account (once)."""
        if Agent.objects.in_account(account).exists():
            return
        rng = random.Random(account.name)
        agents = [
            agent_create(account=account, by=by, name=f"{account.name.split(' - ')[-1]} receptionist",
                         description="Answers inbound calls, books appointments."),
            agent_create(account=account, by=by, name="Follow-up caller", description="Calls leads back.",
                         status=Agent.Status.PAUSED if rng.random() < 0.3 else Agent.Status.ACTIVE),
        ]
        first_names = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun"]
        contacts = []
        for i, first in enumerate(rng.sample(first_names, 5)):
            phone = f"+1415555{rng.randrange(1000, 9999)}{i}"
            if not Contact.objects.in_account(account).filter(phone=phone).exists():
                contacts.append(contact_create(account=account, by=by, name=f"{first} {account.name.split()[0]}",
                                               phone=phone))
        now = timezone.now()
        start_of_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        minutes_so_far = max(1, int((now - start_of_month).total_seconds() // 60) - 30)
        for _ in range(rng.randrange(8, 16)):
            offset = datetime.timedelta(minutes=rng.randrange(0, minutes_so_far))
            contact = rng.choice(contacts)
            conversation_record(account=account, agent=rng.choice(agents), contact=contact,
                                started_at=start_of_month + offset, duration_seconds=rng.randrange(30, 1500),
                                by=by, summary="Caller asked about opening hours and booked a visit.",
                                transcript=[{"role": "agent", "text": "Hello, how can I help?"},
                                            {"role": "caller", "text": f"Hi, this is {contact.name}, "
                                             f"call me back on {contact.phone}. When are you open?"}],
                                recording_url=f"https://recordings.example.com/{rng.randrange(10**8)}.mp3",
                                insights={"sentiment": rng.choice([3, 4, 5]), "booked": True,
                                          "callback_note": f"Call {contact.name.split()[0]} tomorrow"},
                                caller_ip=f"203.0.113.{rng.randrange(1, 254)}", caller_location="San Francisco, US")
