// Package pcsim simulates the AWS Partner Central Selling API for tests,
// benchmarks and demos of pcsync: an http.Handler that speaks the service's
// awsJson1_0 wire protocol for UpdateEngagementContext and GetEngagement.
//
// It owns the simulated service: engagements with their contexts and
// ModifiedAt, optimistic concurrency (409 on a stale EngagementLastModifiedAt),
// the model's request validation (400 with an ErrorList, through package
// partnercentral/schema), SigV4 checks, per-operation token-bucket quotas
// (429), a rolling write budget (402), an outside writer that makes real
// conflicts, other clients of the account drawing from the same quotas,
// fault injection (5xx share, latency, dropped connections,
// responses lost after the write applied), call counters, and a small admin
// API under /_sim/ for seeding and inspecting state.
//
// It does not own the client (package partnercentral) nor the API shapes
// (package partnercentral/types); it is written against the wire, so that a
// client bug cannot hide behind a shared struct.
//
// Behaviour that differs from, or goes beyond, the real service, on purpose:
//   - ModifiedAt has microsecond precision and never falls on a whole
//     millisecond, so a client that truncates timestamps to milliseconds (as
//     the official SDK does) gets a conflict every time, not 999 times in 1000.
//   - A request body over 2 MiB is answered 400 ValidationException
//     (REQUEST_VALIDATION_FAILED), which a client classifies as a permanent
//     fault of the job; bodies over 8 MiB are refused before the signature is
//     checked, because the simulator does not read that much to hash it.
//   - A malformed Authorization header is answered 403
//     IncompleteSignatureException (the real service uses that name with 400).
//   - A Type that does not match the stored context's is a business
//     validation error checked before the conflict check, so that a client
//     does not re-read and retry a request that can never succeed.
package pcsim
