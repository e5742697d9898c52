"""A Django receiver for acceptd webhooks, as a one-file project.

In your own project only the view and its URL matter: it must be csrf_exempt (the signature
is the authentication) and read `request.body`, the raw bytes."""

from __future__ import annotations

import json
import os
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from acceptd.webhooks.receiver import WebhookVerificationError, verify_event

SECRETS = os.environ["ACCEPTD_WEBHOOK_SECRET"].split()
handled: set[str] = set()  # use your database in production


@csrf_exempt
@require_POST
def webhooks(request: HttpRequest) -> HttpResponse:
    try:
        event = verify_event(SECRETS, dict(request.headers), request.body)
    except WebhookVerificationError as exc:
        return HttpResponse(str(exc), status=401)
    if event.id not in handled:
        handled.add(event.id)
        # Your work here; keep it short or hand it to a queue, and answer quickly.
        print(json.dumps({"recipe": "django", "type": event.type, "webhook_id": event.id,
                          "subject": event.data.get("id")}), flush=True)  # fmt: skip
    return HttpResponse(status=204)


urlpatterns = [path("webhooks", webhooks)]

if __name__ == "__main__":
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", os.urandom(32).hex()),
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    )
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
