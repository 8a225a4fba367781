// A data connector endpoint in Node.js (20 or later) that verifies dcon's
// signatures with node:crypto alone: no package to install.
//
// It checks every signature it is configured for, answers 401 to a request
// that fails any of them, drops duplicate deliveries by eventId, and answers
// 200 at once, leaving the work to a queue. See docs/receiving.md.
//
//   node verify.mjs --port 9000 --secret "$NEW" --secret "$OLD" \
//     --issuer https://dcon.example.com --standard-secret "$WHSEC"

import { createServer } from 'node:http';
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify } from 'node:crypto';
import { parseArgs } from 'node:util';

const LEEWAY = 60; // seconds of clock skew allowed on iat and exp
const STANDARD_TOLERANCE = 5 * 60; // how far webhook-timestamp may be from now
const JWKS_MAX_AGE = 5 * 60 * 1000; // how long fetched keys are used before a refetch
const MAX_BODY = 1 << 20;

class Rejected extends Error {} // the request is not to be trusted: answer 401

const sha = (alg, body) => createHash(alg).update(body).digest('hex');

function sameString(a, b) {
  const x = Buffer.from(String(a ?? '')), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// decodeJWT splits a token and checks that its header names alg: the
// algorithm is fixed by the header the token came in, never read from it.
function decodeJWT(token, alg, name) {
  if (!token) throw new Rejected(`${name} missing`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new Rejected(`${name}: malformed`);
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch {
    throw new Rejected(`${name}: malformed`);
  }
  if (header.alg !== alg) throw new Rejected(`${name}: alg is not ${alg}`);
  return { header, claims, signed: Buffer.from(`${parts[0]}.${parts[1]}`), sig: Buffer.from(parts[2], 'base64url') };
}

// checkClaims checks the times, with leeway, and the checksums of the exact
// bytes received.
function checkClaims(c, body, name) {
  const now = Date.now() / 1000;
  if (typeof c.exp !== 'number' || now > c.exp + LEEWAY) throw new Rejected(`${name}: expired`);
  if (typeof c.iat !== 'number' || c.iat > now + LEEWAY) throw new Rejected(`${name}: issued in the future`);
  if (!sameString(c.checksum_sha256, sha('sha256', body))) throw new Rejected(`${name}: checksum_sha256 does not match the body`);
  if (c.checksum && !sameString(c.checksum, sha('sha1', body))) throw new Rejected(`${name}: checksum does not match the body`);
}

// X-Dt-Signature: an HS256 JWT keyed with the connector's signatureSecret;
// secrets holds the new and the old secret while rotating.
function verifyDT(token, body, secrets) {
  const t = decodeJWT(token, 'HS256', 'X-Dt-Signature');
  const ok = secrets.some((s) => {
    const mac = createHmac('sha256', s).update(t.signed).digest();
    return mac.length === t.sig.length && timingSafeEqual(mac, t.sig);
  });
  if (!ok) throw new Rejected('X-Dt-Signature: matches none of the secrets');
  checkClaims(t.claims, body, 'X-Dt-Signature');
}

// Keys are the public keys of DT-Asymmetric-Signature, found by OIDC
// discovery from the issuer, refetched when a token names an unknown kid (at
// most once per minRefresh ms) and when they are JWKS_MAX_AGE old.
class Keys {
  constructor(issuer, minRefresh) {
    this.issuer = issuer.replace(/\/$/, '');
    this.minRefresh = minRefresh;
    this.keys = new Map();
    this.fetched = null;
    this.fetching = null;
  }

  async key(kid) {
    if (this.fetching && !this.keys.has(kid)) await this.fetching; // a fetch under way may bring the kid
    const age = this.fetched === null ? Infinity : Date.now() - this.fetched;
    if (age > JWKS_MAX_AGE || (!this.keys.has(kid) && age >= this.minRefresh)) {
      this.fetching ??= this.fetch().finally(() => { this.fetching = null; });
      await this.fetching;
    }
    const key = this.keys.get(kid);
    if (!key) throw new Rejected(`DT-Asymmetric-Signature: unknown kid ${JSON.stringify(String(kid).slice(0, 32))}`);
    return key;
  }

  async fetch() {
    this.fetched = Date.now();
    const config = await getJSON(`${this.issuer}/.well-known/openid-configuration`);
    const jwks = await getJSON(config.jwks_uri);
    this.keys = new Map(jwks.keys
      .filter((k) => k.kty === 'EC' && k.crv === 'P-256' && k.kid)
      .map((k) => [k.kid, createPublicKey({ key: k, format: 'jwk' })]));
  }
}

async function getJSON(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r.json();
}

// DT-Asymmetric-Signature: an ES256 JWT signed by a key of dcon's JWKS.
async function verifyES256(token, body, keys, issuer) {
  const t = decodeJWT(token, 'ES256', 'DT-Asymmetric-Signature');
  const key = await keys.key(t.header.kid);
  if (!verify('sha256', t.signed, { key, dsaEncoding: 'ieee-p1363' }, t.sig)) {
    throw new Rejected('DT-Asymmetric-Signature: invalid signature');
  }
  checkClaims(t.claims, body, 'DT-Asymmetric-Signature');
  if (t.claims.iss !== issuer) throw new Rejected('DT-Asymmetric-Signature: unexpected issuer');
}

// Standard Webhooks: HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>".
function verifyStandard(headers, body, secrets) {
  const id = headers['webhook-id'], ts = headers['webhook-timestamp'];
  const sigs = (headers['webhook-signature'] ?? '').split(' ').filter(Boolean);
  if (!id || !/^\d+$/.test(ts ?? '') || sigs.length === 0) throw new Rejected('Standard Webhooks headers missing');
  if (Math.abs(Date.now() / 1000 - Number(ts)) > STANDARD_TOLERANCE) throw new Rejected('webhook-timestamp is more than 5 minutes away');
  const signed = Buffer.concat([Buffer.from(`${id}.${Number(ts)}.`), body]);
  for (const secret of secrets) {
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const want = 'v1,' + createHmac('sha256', key).update(signed).digest('base64');
    if (sigs.some((s) => sameString(s, want))) return;
  }
  throw new Rejected('webhook-signature: no v1 signature matches');
}

// Dedup remembers the most recent event ids (a Map keeps insertion order).
class Dedup {
  constructor(capacity = 10_000) { this.ids = new Map(); this.capacity = capacity; }
  seen(id) {
    if (this.ids.has(id)) return true;
    this.ids.set(id, true);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.keys().next().value);
    return false;
  }
}

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    secret: { type: 'string', multiple: true, default: [] },
    issuer: { type: 'string' },
    'standard-secret': { type: 'string', multiple: true, default: [] },
    'jwks-min-refresh-ms': { type: 'string', default: '30000' },
  },
});
const keys = opts.issuer ? new Keys(opts.issuer, Number(opts['jwks-min-refresh-ms'])) : null;
const seen = new Dedup();

const server = createServer(async (req, res) => {
  const answer = (status, text) => res.writeHead(status, { 'Content-Type': 'text/plain' }).end(text + '\n');
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    if ((size += chunk.length) > MAX_BODY) return answer(413, 'body too large');
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks); // the raw bytes: verify before parsing
  try {
    if (opts.secret.length) verifyDT(req.headers['x-dt-signature'], body, opts.secret);
    if (keys) await verifyES256(req.headers['dt-asymmetric-signature'], body, keys, opts.issuer);
    if (opts['standard-secret'].length) verifyStandard(req.headers, body, opts['standard-secret']);
  } catch (e) {
    if (!(e instanceof Rejected)) return answer(503, `cannot fetch the signing keys: ${e.message}`); // dcon retries
    console.log(`refused: ${e.message}`);
    return answer(401, e.message);
  }
  const { event } = JSON.parse(body);
  if (seen.seen(event.eventId)) {
    console.log(`duplicate ${event.eventId}`);
  } else {
    setImmediate(() => console.log(`event ${event.eventId} ${event.eventType}`)); // the slow part, after the 200
  }
  answer(200, 'ok');
});
server.listen(Number(opts.port), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
