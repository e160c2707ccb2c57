package daemon

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pcsync/pcsync/updater"
)

// summary is what this run of the worker did, for the line it logs when it
// stops (the end of a batch run): a "jobs" group with every outcome, summed
// over the queues, and the calls made. It reads the worker's own counters,
// which start at zero with the process.
func summary(reg prometheus.Gatherer) []any {
	jobs := map[string]float64{}
	calls := map[string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		return []any{slog.String("summary", "metrics unreadable: "+err.Error())}
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "pcsync_jobs_total":
				jobs[labelValue(m.GetLabel(), "outcome")] += m.GetCounter().GetValue()
			case "pcsync_api_requests_total":
				calls[labelValue(m.GetLabel(), "operation")] += m.GetCounter().GetValue()
			}
		}
	}
	var byOutcome []any
	for _, o := range updater.Outcomes() {
		byOutcome = append(byOutcome, slog.Int(o, int(jobs[o])))
	}
	return []any{slog.Group("jobs", byOutcome...),
		slog.Int("writes", int(calls[updater.OpUpdate])), slog.Int("reads", int(calls[updater.OpGet]))}
}

func labelValue(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
