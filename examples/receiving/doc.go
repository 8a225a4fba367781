// Package receiving holds the receiver examples of docs/receiving.md —
// verify.py (Python, PyJWT), verify.mjs (Node.js, node:crypto) and
// goreceiver (Go, dcon/receiver) — and the test that runs each of them
// against requests signed exactly as dcon signs them.
package receiving
