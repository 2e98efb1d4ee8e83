from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account
from accounts.services import account_create, subaccount_create
from members.models import Membership, User
from members.roles import RoleId
from members.services import membership_add

DEMO_PASSWORD = "demo-pass-2026"

PEOPLE = [
    # email, name, what they see
    ("owner@northwind.example", "Nora Owner", "Owner of Northwind Agency: every subaccount below it"),
    ("admin@northwind.example", "Adam Admin", "Admin of Northwind Agency"),
    ("member@northwind.example", "Mia Member", "Member of Northwind Agency (no admin pages)"),
    ("owner@acme.example", "Alice Acme", "Owner of the Acme Corp subaccount only"),
    ("viewer@acme.example", "Victor Viewer", "Viewer in Acme Sales EMEA (level 4)"),
    ("owner@blueharbor.example", "Bea Harbor", "Owner of Blue Harbor Dental, a client-owned account"),
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
]

ROLES = [
    ("owner@northwind.example", "Northwind Agency", RoleId.OWNER),
    ("admin@northwind.example", "Northwind Agency", RoleId.ADMIN),
    ("member@northwind.example", "Northwind Agency", RoleId.MEMBER),
    ("owner@acme.example", "Acme Corp", RoleId.OWNER),
    ("viewer@acme.example", "Acme Sales - EMEA", RoleId.VIEWER),
]


class Command(BaseCommand):
    help = "Create the demo agency, its nested subaccounts and people in several roles. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {}
        for email, name, _ in PEOPLE:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
            users[email] = user

        owner = users["owner@northwind.example"]
        accounts: dict[str, Account] = {}
        for name, parent_name in TREE:
            parent = accounts.get(parent_name)
            existing = Account.objects.filter(name=name, parent=parent).first()
            if existing:
                accounts[name] = existing
            elif parent is None:
                accounts[name] = account_create(name=name, owner=owner)
            else:
                accounts[name] = subaccount_create(parent=parent, name=name, by=owner, owner=None)

        if not Account.objects.filter(name="Blue Harbor Dental", parent=None).exists():
            account_create(name="Blue Harbor Dental", owner=users["owner@blueharbor.example"])

        for email, account_name, role in ROLES:
            account = accounts[account_name]
            if not Membership.objects.filter(user=users[email], account=account).exists():
                membership_add(account=account, user=users[email], role=role, by=None)

        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000/accounts/login/"))
        self.stdout.write(f"Password for every demo login: {DEMO_PASSWORD}")
        for email, _, what in PEOPLE:
            self.stdout.write(f"  {email:<28} {what}")
