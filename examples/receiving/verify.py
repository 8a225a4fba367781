#!/usr/bin/env python3
"""A data connector endpoint in Python that verifies dcon's signatures.

It checks every signature it is configured for, answers 401 to a request that
fails any of them, drops duplicate deliveries by eventId, and answers 200 at
once, leaving the work to a queue. See docs/receiving.md.

Needs PyJWT 2 with cryptography (Debian: apt-get install python3-jwt
python3-cryptography; pip: pip install "pyjwt[crypto]").

    python3 verify.py --port 9000 --secret "$NEW" --secret "$OLD" \\
        --issuer https://dcon.example.com --standard-secret "$WHSEC"
"""

import argparse
import base64
import collections
import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT

LEEWAY = 60  # seconds of clock skew allowed on iat and exp
STANDARD_TOLERANCE = 5 * 60  # how far webhook-timestamp may be from now
JWKS_MAX_AGE = 5 * 60  # how long fetched keys are used before a refetch
MAX_BODY = 1 << 20


class Rejected(Exception):
    """The request is not to be trusted: answer 401."""


def check_checksums(claims, body):
    """The token must carry the checksum of the exact bytes received."""
    if not hmac.compare_digest(str(claims.get("checksum_sha256", "")), hashlib.sha256(body).hexdigest()):
        raise Rejected("checksum_sha256 does not match the body")
    if claims.get("checksum") and not hmac.compare_digest(str(claims["checksum"]), hashlib.sha1(body).hexdigest()):
        raise Rejected("checksum (SHA-1) does not match the body")


def verify_dt(token, body, secrets):
    """X-Dt-Signature: an HS256 JWT keyed with the connector's signatureSecret.
    secrets holds the new and the old secret while rotating."""
    if not token:
        raise Rejected("X-Dt-Signature missing")
    for secret in secrets:
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=LEEWAY,
                                options={"require": ["exp", "iat", "checksum_sha256"]})
        except jwt.InvalidSignatureError:
            continue  # not this secret: try the next one
        except jwt.InvalidTokenError as e:
            raise Rejected(f"X-Dt-Signature: {e}")
        check_checksums(claims, body)
        return claims
    raise Rejected("X-Dt-Signature: matches none of the secrets")


class Keys:
    """The public keys of DT-Asymmetric-Signature, found by OIDC discovery
    from the issuer, refetched when a token names an unknown kid (at most
    once per min_refresh seconds) and when they are JWKS_MAX_AGE old."""

    def __init__(self, issuer, min_refresh):
        self.issuer = issuer.rstrip("/")
        self.min_refresh = min_refresh
        self.keys = {}
        self.fetched = None
        self.lock = threading.Lock()

    def key(self, kid):
        with self.lock:
            now = time.monotonic()
            stale = self.fetched is None or now - self.fetched > JWKS_MAX_AGE
            may_refresh = self.fetched is None or now - self.fetched >= self.min_refresh
            if stale or (kid not in self.keys and may_refresh):
                self.fetched = now
                self.keys = self.fetch()
            if kid not in self.keys:
                raise Rejected(f"DT-Asymmetric-Signature: unknown kid {kid[:32]!r}")
            return self.keys[kid]

    def fetch(self):
        config = get_json(self.issuer + "/.well-known/openid-configuration")
        jwks = jwt.PyJWKSet.from_dict(get_json(config["jwks_uri"]))
        return {k.key_id: k.key for k in jwks.keys if k.key_id}


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def verify_es256(token, body, keys, issuer):
    """DT-Asymmetric-Signature: an ES256 JWT signed by a key of dcon's JWKS."""
    if not token:
        raise Rejected("DT-Asymmetric-Signature missing")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "ES256":  # fixed by the header name, never taken from the token
            raise Rejected("DT-Asymmetric-Signature: alg is not ES256")
        key = keys.key(str(header.get("kid", "")))
        claims = jwt.decode(token, key, algorithms=["ES256"], issuer=issuer, leeway=LEEWAY,
                            options={"require": ["exp", "iat", "iss", "checksum_sha256"]})
    except jwt.InvalidTokenError as e:
        raise Rejected(f"DT-Asymmetric-Signature: {e}")
    check_checksums(claims, body)
    return claims


def verify_standard(headers, body, secrets):
    """Standard Webhooks: HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>"."""
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    sigs = headers.get("webhook-signature", "").split()
    if not msg_id or not ts.isdigit() or not sigs:
        raise Rejected("Standard Webhooks headers missing")
    if abs(time.time() - int(ts)) > STANDARD_TOLERANCE:
        raise Rejected("webhook-timestamp is more than 5 minutes away")
    signed = f"{msg_id}.{int(ts)}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(s, want) for s in sigs):
            return
    raise Rejected("webhook-signature: no v1 signature matches")


class Dedup:
    """The most recent event ids, to drop duplicate deliveries (bounded)."""

    def __init__(self, capacity=10_000):
        self.ids = collections.OrderedDict()
        self.capacity = capacity
        self.lock = threading.Lock()

    def seen(self, event_id):
        with self.lock:
            if event_id in self.ids:
                self.ids.move_to_end(event_id)
                return True
            self.ids[event_id] = None
            if len(self.ids) > self.capacity:
                self.ids.popitem(last=False)
            return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--secret", action="append", default=[], help="X-Dt-Signature secret (repeat while rotating)")
    p.add_argument("--issuer", help="dcon's issuer URL: require DT-Asymmetric-Signature")
    p.add_argument("--standard-secret", action="append", default=[], help="Standard Webhooks secret, whsec_…")
    p.add_argument("--jwks-min-refresh-ms", type=int, default=30_000)
    args = p.parse_args()
    keys = Keys(args.issuer, args.jwks_min_refresh_ms / 1000) if args.issuer else None
    seen = Dedup()
    work = queue.Queue()

    def worker():  # the slow part, after the 200
        while True:
            event = work.get()
            print(f"event {event['eventId']} {event['eventType']}", flush=True)

    threading.Thread(target=worker, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            if length > MAX_BODY:
                return self.answer(413, "body too large")
            body = self.rfile.read(length)  # the raw bytes: verify before parsing
            try:
                if args.secret:
                    verify_dt(self.headers.get("X-Dt-Signature"), body, args.secret)
                if keys:
                    verify_es256(self.headers.get("DT-Asymmetric-Signature"), body, keys, args.issuer)
                if args.standard_secret:
                    verify_standard(self.headers, body, args.standard_secret)
            except Rejected as e:
                print(f"refused: {e}", flush=True)
                return self.answer(401, str(e))
            except OSError as e:  # the keys could not be fetched: dcon retries
                return self.answer(503, f"cannot fetch the signing keys: {e}")
            event = json.loads(body)["event"]
            if seen.seen(event["eventId"]):
                print(f"duplicate {event['eventId']}", flush=True)
            else:
                work.put(event)
            self.answer(200, "ok")

        def answer(self, status, text):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(text.encode() + b"\n")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
