// Package types holds the Partner Central Selling API shapes that pcsync
// sends and receives, under the names the official
// github.com/aws/aws-sdk-go-v2/service/partnercentralselling/types module
// uses, so that swapping that module in later is a small change.
//
// It owns the data shapes, the enums and the modeled errors. It does not own
// the wire format (package partnercentral) or the model's validation rules
// (package partnercentral/schema).
//
// One deliberate difference from the official module: timestamps are the
// exact strings the service sent (ISO 8601), not *time.Time. The official
// SDKs keep milliseconds and send back their own form of the instant, which
// the service must accept; the exact string is never worse, and stays right
// if the service compares finer than the SDKs keep.
package types
