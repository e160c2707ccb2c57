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
// ModifiedAt has millisecond precision, the most the official SDKs keep
// (JavaScript's Date; smithy-go's FormatDateTime writes no more), and each
// version of an engagement has a millisecond of its own: a write in the
// same millisecond as the last one gets the next millisecond, ahead of the
// clock if need be. An EngagementLastModifiedAt is compared with ModifiedAt
// to the millisecond, digits below it dropped as the SDKs drop them. So a
// client that sends back the string it got matches, and so does one that
// sends an SDK's form of the same instant (smithy-go's "…08.12Z" for
// "…08.120Z", the JavaScript SDK's "…08Z" for "…08.000Z", "+00:00" for
// "Z"); every other version conflicts. The real service must accept at
// least that much for the official SDKs to work; whether it keeps finer
// digits cannot be seen from outside. sdkconformance_test.go holds the
// simulator to what the official AWS SDK for JavaScript sends and parses.
//
// Behaviour that differs from, or goes beyond, the real service, on purpose:
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
