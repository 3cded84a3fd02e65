# hub/slack_post: post a message, or upload a file, to a Slack webhook.
#
# Inputs:
#   webhook_url  the Slack incoming-webhook URL (or any URL that accepts the same payloads)
#   text         the message; with a file, its comment
#   file_path    optional: a file to upload instead of a plain message
#   filename     optional: the name to show for the file (default: the file's own name)
#   token        optional: sent as "Authorization: Bearer <token>" (for Slack API upload URLs)
# Without a file, posts {"text": text} as JSON. With a file, posts multipart/form-data with the
# fields `file` (the bytes), `filename` and `initial_comment` (the text).
# Result: {"status": 200, "response": "<the body Slack answered>"}; a status of 400 or more
# fails the step.
import json
import os
import urllib.error
import urllib.request
import uuid


def _multipart(fields, file_field, filename, content):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def main(webhook_url: str, text: str = "", file_path: str = None, filename: str = None, token: str = None):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if file_path:
        with open(file_path, "rb") as f:
            content = f.read()
        name = filename or os.path.basename(file_path)
        fields = {"filename": name, "initial_comment": text or ""}
        data, headers["Content-Type"] = _multipart(fields, "file", name, content)
    else:
        if not text:
            raise ValueError("slack_post needs `text` or `file_path`")
        data = json.dumps({"text": text}).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(webhook_url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return {"status": response.status, "response": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"Slack answered {e.code}: {e.read()[:500]!r}") from None
