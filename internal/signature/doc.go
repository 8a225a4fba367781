// Package signature makes and checks the signatures dcon puts on the requests it
// sends to data connector endpoints.
//
// X-Dt-Signature, the shared-secret signature of the Data Connector contract, is
// an HS256 JWT whose claims carry the SHA-1 and SHA-256 of the body, an issue
// time, an expiry an hour later and a unique id. [AppendDT] writes one into a
// caller's buffer; a fresh one is made for every attempt, so it is written with
// the standard library only and allocates nothing in the usual case. [VerifyDT]
// checks one the way a receiver must, against any of several secrets so that a
// secret can be rotated.
//
// DT-Asymmetric-Signature, an ES256 JWT, is made by [AppendES256] or [KeySet.Sign]
// with the active key of a [KeySet] and checked by [VerifyES256]; the KeySet
// publishes its keys as a JWKS and rotates with an overlap. [StandardSign] and
// [VerifyStandard] implement the optional Standard Webhooks scheme.
//
// The package depends on the standard library only.
package signature
