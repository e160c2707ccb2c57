package updater

// Job outcomes: the one vocabulary of what became of a job, as counted by
// Observer.JobDone, labelled on pcsync_jobs_total and shown by the demo.
const (
	OutcomeApplied        = "applied"         // written
	OutcomeUnchanged      = "unchanged"       // the context already held the payload before any write: nothing to do
	OutcomeAlreadyApplied = "already_applied" // found in place after a write's answer was lost, or on a redelivery
	OutcomeCoalesced      = "coalesced"       // a newer job for the same context was written instead
	OutcomeStale          = "stale"           // older than what was last applied to the context: never written
	OutcomeDeadLettered   = "dead_lettered"   // can never be applied as it is
	OutcomeRetried        = "retried"         // sent back to the queue for later
	OutcomeAbandoned      = "abandoned"       // the worker stopped mid-job; the message reappears
)

// Outcomes returns every job outcome, those that end a job first.
func Outcomes() []string {
	return []string{OutcomeApplied, OutcomeUnchanged, OutcomeAlreadyApplied, OutcomeCoalesced, OutcomeStale,
		OutcomeDeadLettered, OutcomeRetried, OutcomeAbandoned}
}

// Final reports whether a job with this outcome is done with: it will not
// come back from the queue.
func Final(outcome string) bool {
	switch outcome {
	case OutcomeApplied, OutcomeUnchanged, OutcomeAlreadyApplied, OutcomeCoalesced, OutcomeStale, OutcomeDeadLettered:
		return true
	}
	return false
}
