package queue

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy on a fixed loopback address in front of a kumo
// server. Taking it down refuses and resets connections, like an endpoint
// that went away; bringing it up again, possibly in front of a new kumo
// server, is a restart. kumo keeps its queues per process, so a new server
// sees the old queues and their in-flight messages.
type proxy struct {
	addr string

	mu     sync.Mutex
	ln     net.Listener
	target string
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) pipe(client net.Conn) {
	defer client.Close()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if !p.track(client) {
		return
	}
	server, err := net.Dial("tcp", target)
	if err != nil || !p.track(server) {
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(server, client)
		server.Close()
		close(done)
	}()
	io.Copy(client, server)
	client.Close()
	<-done
}

// down closes the listener and resets every connection.
func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // reset, not a polite close
		}
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// up listens again on the same address, in front of target.
func (p *proxy) up(t testing.TB, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	p.serve(ln)
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

// testConsumerRestart takes SQS away in the middle of a run, brings a new
// kumo server up behind the same address, and checks that the consumer kept
// trying, logged the outage once, recovered and lost nothing. It starts
// kumo servers of its own, so it must not run in parallel with other tests
// (kumo.NewServer is not safe for concurrent use).
func testConsumerRestart(t *testing.T, _ string) {
	const n = 300
	first := newKumo(t)
	p := newProxy(t, hostPort(first.URL))
	admin := newClient(first.URL, nil)
	url := createQueue(t, admin, queueName(t, ""), map[string]string{"VisibilityTimeout": "3"})
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("k%d:%d", i%40, i)
	}
	sendBodies(t, admin, url, bodies, nil)

	var mu sync.Mutex
	handled := map[string]int{}
	var distinct atomic.Int64
	rec := newRecorder()
	log, logs := newLogger(t)
	c, err := NewConsumer(newClient("http://"+p.addr, nil), Config{
		// Room to spare, so the pollers keep trying to receive during the
		// outage while failed deletes keep their messages held.
		QueueURL: url, Workers: 8, MaxHeld: n, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		pause(ctx, 10*time.Millisecond)
		mu.Lock()
		for _, m := range batch {
			if handled[m.Body]++; handled[m.Body] == 1 {
				distinct.Add(1)
			}
		}
		mu.Unlock()
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, 20*time.Second, "a third of the messages acked", func() bool { return rec.acked.Load() >= n/3 })

	p.down()
	first.Close()
	waitFor(t, 20*time.Second, "receives failing for a while", func() bool { return rec.errorsOf(OpReceiveMessage) >= 5 })
	select {
	case <-r.finished:
		t.Fatalf("Run returned during the outage: %v", r.err)
	default:
	}
	second := newKumo(t)
	p.up(t, hostPort(second.URL))

	admin = newClient(second.URL, nil)
	waitFor(t, 30*time.Second, "receiving recovered, every message handled and the queue empty", func() bool {
		if distinct.Load() < n || logs.count("ReceiveMessage recovered") == 0 {
			return false
		}
		v, f := depth(t, admin, url)
		return v == 0 && f == 0
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	failing, recovered := logs.count("ReceiveMessage failing; retrying with backoff"), logs.count("ReceiveMessage recovered")
	if failing != 1 || recovered != 1 {
		t.Errorf("receive outage logs: got %d \"failing\" and %d \"recovered\", want 1 and 1 (once per streak)", failing, recovered)
	}
	t.Logf("outage: %d failed SQS calls %v; %d redeliveries", rec.callErrors.Load(), rec.errCodes, redeliveries(handled))
}

func redeliveries(handled map[string]int) int {
	n := 0
	for _, c := range handled {
		n += c - 1
	}
	return n
}
