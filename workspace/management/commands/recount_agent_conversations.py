from django.core.management.base import BaseCommand

from workspace.counts import recount_agent_conversations


class Command(BaseCommand):
    help = ("Set each agent's count of conversations (the Agents page's column) from the conversations recorded. "
            "Recording and deleting a call keep it; run this after writing conversations another way (bulk "
            "inserts, SQL) or after a deploy that recorded calls with older code. One UPDATE; run it again if "
            "calls were being recorded meanwhile.")

    def handle(self, *args, **options):
        wrong = recount_agent_conversations()
        self.stdout.write(self.style.SUCCESS(
            f"Agents' conversation counts checked: {wrong} corrected." if wrong else
            "Agents' conversation counts checked: all were right."))
