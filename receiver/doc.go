// Package receiver is what a data connector endpoint needs to take events from
// dcon safely: it verifies the signatures of each request, decodes the event
// into typed Go values, and drops duplicate deliveries. It depends on the
// standard library only; copy it or import it as dcon/receiver.
//
// # Receive events
//
// Make one Verifier with the signatures you want to require, wrap your
// handler in Middleware, and serve it over HTTPS:
//
//	v, err := receiver.NewVerifier(receiver.Config{
//		Secrets: []string{os.Getenv("DCON_SIGNATURE_SECRET")},
//	})
//	if err != nil { ... }
//	seen := receiver.NewDedup(0)
//	http.Handle("POST /dcon", receiver.Middleware(v, 0, receiver.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request, ev *receiver.Event) {
//			if seen.Seen(ev.EventID) {
//				return // a duplicate: acknowledge it again, do nothing
//			}
//			if t, ok := ev.Temperature(); ok {
//				if err := store(ev.TargetName, t.Value, t.UpdateTime); err != nil {
//					seen.Forget(ev.EventID)
//					http.Error(w, "try again", http.StatusServiceUnavailable)
//					return
//				}
//			}
//		})))
//
// Any 2xx answer acknowledges the event; anything else (or no answer within
// 10 seconds) makes dcon retry it, with backoff, for up to 12 hours after the
// event. Answer quickly: queue slow work rather than doing it in the handler.
//
// Middleware answers 401 when a signature is missing or wrong, 413 to a body
// over its limit, 400 to a body that is not an event, and 503 when it cannot
// fetch the signing keys. Without Middleware, read the raw body yourself, call
// Verifier.Verify with those exact bytes, and only then ParseEvent.
//
// # The signatures
//
// Config chooses the signatures required; every one configured must be on
// every request and verify, and the rest are ignored.
//
//   - X-Dt-Signature (Config.Secrets): an HS256 JWT keyed with the connector's
//     signatureSecret, carrying the body's SHA-1 and SHA-256 and expiring an
//     hour after it was made. The original Data Connector scheme.
//   - DT-Asymmetric-Signature (Config.JWKSURL or Config.Issuer): an ES256 JWT
//     carrying the body's SHA-256 and expiring 5 minutes after it was made,
//     signed by a key that dcon publishes in a JWKS. Nothing secret is shared
//     with the receiver. Set Issuer to check the iss claim and, without
//     JWKSURL, to find the JWKS by OIDC discovery; set Subject to accept only
//     your organization's events.
//   - Standard Webhooks (Config.StandardSecrets): webhook-id, webhook-timestamp
//     and webhook-signature, "v1," and an HMAC-SHA256 keyed with a "whsec_"
//     secret, timestamps within 5 minutes.
//
// A token's algorithm is fixed by the header it came in, never read from the
// token, so "alg":"none" and HS256 signed with the public key are refused.
// Times are checked against Config.Now with Config.Leeway (1 minute) of clock
// skew; the body checksum is compared with the bytes actually received.
//
// # Rotate
//
// Shared secrets: put the new secret next to the old one in Config.Secrets
// (or StandardSecrets), change the connector's secret, and remove the old one
// once the events signed with it are delivered — a retry is signed afresh
// with the secret current at that attempt, so this is minutes, not hours.
//
// ES256 keys rotate on dcon's side alone: a new key signs at once, the old one
// stays in the JWKS for a day. The Verifier refetches the JWKS when a token
// names a kid it has not seen (at most once per Config.JWKSMinRefresh, 30 s),
// and otherwise when the JWKS answer's Cache-Control max-age runs out.
//
// # Deduplicate
//
// Delivery is at least once: a crash between your 2xx and dcon recording it
// brings the event again, with the same EventID. Dedup remembers the most
// recent ids in bounded memory; for a guarantee across restarts, make EventID
// a unique key where you store events. Events are not ordered either: use
// Event.Timestamp as the version of a device's state.
package receiver
