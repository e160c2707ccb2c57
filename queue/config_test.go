package queue

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := NewConsumer(newClient("http://127.0.0.1:1", nil), Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/1/q"},
		handlerFuncs{handle: nil})
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"Workers", got.Workers, DefaultWorkers},
		{"Pollers", got.Pollers, 2},
		{"MaxHeld", got.MaxHeld, 2*DefaultWorkers + 20},
		{"MaxBatch", got.MaxBatch, 1},
		{"WaitTime", got.WaitTime, DefaultWaitTime},
		{"VisibilityTimeout", got.VisibilityTimeout, time.Duration(0)}, // read from the queue by Run
		{"DrainTimeout", got.DrainTimeout, DefaultDrainTimeout},
		{"FlushInterval", got.FlushInterval, DefaultFlushInterval},
		{"KeepDelay", got.KeepDelay, DefaultKeepDelay},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.field, tc.got, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	const url = "https://sqs.us-east-1.amazonaws.com/1/q"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" when valid
	}{
		{"minimal", Config{QueueURL: url}, ""},
		{"missing queue", Config{}, "QueueURL is required"},
		{"relative queue URL", Config{QueueURL: "q"}, "QueueURL must be an absolute URL"},
		{"negative workers", Config{QueueURL: url, Workers: -1}, "Workers must be between 1 and 4096, got -1"},
		{"too many pollers", Config{QueueURL: url, Pollers: 65}, "Pollers must be between 1 and 64, got 65"},
		{"held below workers", Config{QueueURL: url, Workers: 8, MaxHeld: 4}, "MaxHeld must be at least Workers (8), got 4"},
		{"batch above held", Config{QueueURL: url, Workers: 2, MaxHeld: 4, MaxBatch: 5}, "MaxBatch must be at most MaxHeld (4), got 5"},
		{"wait over 20s", Config{QueueURL: url, WaitTime: 21 * time.Second}, "WaitTime must be between 1s and 20s, got 21s"},
		{"wait not whole seconds", Config{QueueURL: url, WaitTime: 1500 * time.Millisecond}, "WaitTime must be whole seconds"},
		{"visibility over 12h", Config{QueueURL: url, VisibilityTimeout: 13 * time.Hour}, "VisibilityTimeout must be between 1s and 12h"},
		{"visibility not whole seconds", Config{QueueURL: url, VisibilityTimeout: 2500 * time.Millisecond}, "VisibilityTimeout must be whole seconds"},
		{"negative drain", Config{QueueURL: url, DrainTimeout: -time.Second}, "DrainTimeout must be between"},
		{"slow flush", Config{QueueURL: url, FlushInterval: time.Minute}, "FlushInterval must be between 1ms and 10s, got 1m0s"},
		{"negative idle", Config{QueueURL: url, ExitWhenIdle: -time.Second}, "ExitWhenIdle must not be negative"},
		{"DLQ is the queue", Config{QueueURL: url, DLQURL: url}, "DLQURL must differ from QueueURL"},
		{"standard DLQ for FIFO", Config{QueueURL: url + ".fifo", DLQURL: url + "-dlq"}, "DLQURL must be a FIFO queue (.fifo) exactly when QueueURL is one"},
		{"every error at once", Config{Workers: -1, Pollers: -1}, "QueueURL is required\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewConsumer(newClient("http://127.0.0.1:1", nil), tc.cfg, handlerFuncs{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("got no error, want one containing %q", tc.want)
			case !errors.Is(err, ErrInvalidConfig):
				t.Errorf("got %v, want it to wrap ErrInvalidConfig", err)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestVisibilitySeconds(t *testing.T) {
	for _, tc := range []struct {
		d, left time.Duration
		want    int32
	}{
		{0, time.Hour, 0},
		{1500 * time.Millisecond, time.Hour, 2}, // rounded up: never back before d
		{30 * time.Second, time.Hour, 30},
		{time.Hour, 10 * time.Minute, 600},      // capped by the 12 h limit
		{time.Hour, 1500 * time.Millisecond, 1}, // whole seconds left only
		{time.Minute, -time.Second, 0},
	} {
		if got := visibilitySeconds(tc.d, tc.left); got != tc.want {
			t.Errorf("visibilitySeconds(%v, %v): got %d, want %d", tc.d, tc.left, got, tc.want)
		}
	}
}

func TestKeepDelayGrowsWithDeliveries(t *testing.T) {
	tests := []struct {
		receives int
		want     time.Duration
	}{
		{1, 5 * time.Minute},
		{2, 10 * time.Minute},
		{4, 40 * time.Minute},
		{20, maxVisibility - time.Minute},
	}
	for _, tt := range tests {
		if got := keepDelay(5*time.Minute, tt.receives); got != tt.want {
			t.Errorf("keepDelay(5m, %d): got %v, want %v", tt.receives, got, tt.want)
		}
	}
}

// TestQueuesConfigValidation: the rules for Config.Queues; each error names
// the queue by its index and URL.
func TestQueuesConfigValidation(t *testing.T) {
	const base = "https://sqs.us-east-1.amazonaws.com/1/"
	rt, bulk := base+"pcsync-realtime", base+"pcsync-bulk"
	for _, tc := range []struct {
		name   string
		cfg    Config
		want   string // "" when valid
		wantTo []Source
	}{
		{"two queues", Config{Queues: []Source{{URL: rt}, {URL: bulk, DLQURL: bulk + "-dlq"}}}, "",
			[]Source{{URL: rt}, {URL: bulk, DLQURL: bulk + "-dlq"}}},
		{"FIFO and standard mixed", Config{Queues: []Source{{URL: rt + ".fifo", DLQURL: rt + "-dlq.fifo"}, {URL: bulk, DLQURL: bulk + "-dlq"}}}, "", nil},
		{"one dead-letter queue for both", Config{Queues: []Source{{URL: rt, DLQURL: base + "dlq"}, {URL: bulk, DLQURL: base + "dlq"}}}, "", nil},
		{"shorthand becomes Queues", Config{QueueURL: rt, DLQURL: rt + "-dlq"}, "", []Source{{URL: rt, DLQURL: rt + "-dlq"}}},
		{"QueueURL and Queues", Config{QueueURL: rt, Queues: []Source{{URL: bulk}}}, "QueueURL and DLQURL are the shorthand for one queue: leave them empty when Queues is set", nil},
		{"DLQURL and Queues", Config{DLQURL: rt + "-dlq", Queues: []Source{{URL: bulk}}}, "QueueURL and DLQURL are the shorthand for one queue", nil},
		{"missing URL", Config{Queues: []Source{{URL: rt}, {DLQURL: bulk + "-dlq"}}}, "Queues[1].URL is required", nil},
		{"relative URL", Config{Queues: []Source{{URL: "pcsync-realtime"}}}, `Queues[0].URL must be an absolute URL, got "pcsync-realtime"`, nil},
		{"relative DLQ URL", Config{Queues: []Source{{URL: rt}, {URL: bulk, DLQURL: "dlq"}}}, `Queues[1].DLQURL must be an absolute URL, got "dlq" (` + bulk + ")", nil},
		{"same URL twice", Config{Queues: []Source{{URL: rt}, {URL: bulk}, {URL: rt}}}, "Queues[2].URL repeats Queues[0].URL: " + rt, nil},
		{"same name twice", Config{Queues: []Source{{URL: rt}, {URL: "https://sqs.eu-west-1.amazonaws.com/1/pcsync-realtime"}}},
			`Queues[1].URL (https://sqs.eu-west-1.amazonaws.com/1/pcsync-realtime) has the queue name "pcsync-realtime" of Queues[0].URL`, nil},
		{"DLQ is the queue", Config{Queues: []Source{{URL: rt}, {URL: bulk, DLQURL: bulk}}}, "Queues[1].DLQURL must differ from Queues[1].URL (" + bulk + ")", nil},
		{"standard DLQ for FIFO", Config{Queues: []Source{{URL: rt + ".fifo", DLQURL: rt + "-dlq"}}},
			"Queues[0].DLQURL must be a FIFO queue (.fifo) exactly when Queues[0].URL is one", nil},
		{"DLQ consumed", Config{Queues: []Source{{URL: rt, DLQURL: bulk}, {URL: bulk}}},
			"Queues[0].DLQURL (" + bulk + ") is consumed as Queues[1].URL", nil},
		{"every error at once", Config{Queues: []Source{{URL: "a"}, {URL: rt, DLQURL: rt}}, Workers: -1}, "Queues[0].URL must be an absolute URL", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConsumer(newClient("http://127.0.0.1:1", nil), tc.cfg, handlerFuncs{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want == "":
				if tc.wantTo != nil && !slices.Equal(c.cfg.Queues, tc.wantTo) {
					t.Errorf("Queues: got %v, want %v", c.cfg.Queues, tc.wantTo)
				}
				return
			case err == nil:
				t.Fatalf("got no error, want one containing %q", tc.want)
			case !errors.Is(err, ErrInvalidConfig):
				t.Errorf("got %v, want it to wrap ErrInvalidConfig", err)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			if tc.name == "every error at once" && strings.Count(err.Error(), "\n") != 2 {
				t.Errorf("got %q, want three errors, one per line", err)
			}
		})
	}
}

// TestQueuesNames: a queue's name, Message.Queue, is the last segment of
// its URL.
func TestQueuesNames(t *testing.T) {
	for url, want := range map[string]string{
		"https://sqs.us-east-1.amazonaws.com/123456789012/pcsync-realtime": "pcsync-realtime",
		"https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo":       "jobs.fifo",
		"http://localhost:4566/000000000000/pcsync-bulk/":                  "pcsync-bulk",
		"http://localhost:4566": "localhost:4566",
	} {
		if got := QueueName(url); got != want {
			t.Errorf("QueueName(%q): got %q, want %q", url, got, want)
		}
	}
}
