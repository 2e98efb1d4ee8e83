import http.server
import json

from django.core.management.base import BaseCommand, CommandError

from developers.models import Webhook
from developers.webhooks import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class Command(BaseCommand):
    help = ("A local webhook receiver for the demo: prints each delivery and whether its signature verifies. "
            "Listens on 127.0.0.1 only.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--secret", help="The signing secret (default: the demo webhook's, from the database).")

    def handle(self, *args, port, secret, **options):
        if secret is None:
            hook = Webhook.objects.filter(url__startswith=f"http://127.0.0.1:{port}/").first()
            if hook is None:
                raise CommandError(f"No webhook points at port {port}: run seed_demo, or pass --secret.")
            secret = hook.secret
        out, style = self.stdout, self.style

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(secret, raw, self.headers.get(TIMESTAMP_HEADER, ""), self.headers.get(SIGNATURE_HEADER, ""))
                try:
                    event = json.loads(raw).get("event_type", "?")
                except ValueError:
                    event = "?"
                out.write((style.SUCCESS if ok else style.ERROR)(
                    f"{event} {self.headers.get(ID_HEADER, '')} signature {'verified' if ok else 'INVALID'}"))
                self.send_response(200 if ok else 400)
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"bad signature")

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.stdout.write(f"Receiving webhooks on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
