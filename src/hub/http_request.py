# hub/http_request: send one HTTP request and return the response.
#
# Inputs:
#   url      the address to call (http or https)
#   method   GET (default), POST, PUT, PATCH, DELETE, ...
#   headers  an object of request headers
#   body     sent as JSON when it is an object or array, as text otherwise; omitted when null
#   timeout  seconds before giving up (default 30)
# Result: {"status": 200, "headers": {...}, "body": ...}; the body is parsed JSON when the
# response says it is JSON, else text. A status of 400 or more fails the step (raise_for_status
# semantics) with the status and the start of the body in the message.
import json
import urllib.error
import urllib.request


def main(url: str, method: str = "GET", headers: dict = None, body=None, timeout: float = 30):
    headers = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = str(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method.upper())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, response_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method.upper()} {url} answered {e.code}: {e.read()[:500]!r}") from None
    text = raw.decode("utf-8", errors="replace")
    content_type = response_headers.get("Content-Type", "")
    parsed = text
    if "json" in content_type:
        parsed = json.loads(text)
    return {"status": status, "headers": response_headers, "body": parsed}
