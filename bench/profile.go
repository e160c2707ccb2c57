package main

// This file holds -profile: CPU and heap profiles of the CPU scenarios, to
// find what dominates their figures. Profiling costs CPU of its own, so the
// figures of a profiled run are not the ones to compare with the targets.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// profileSelf profiles this process's CPU into DIR/NAME-cpu.pprof until the
// returned function is called, which also writes DIR/NAME-heap.pprof. With
// no -profile it does nothing.
func profileSelf(e *env, name string) (stop func()) {
	if e.opt.profile == "" {
		return func() {}
	}
	path := filepath.Join(e.opt.profile, name+"-cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: no CPU profile: %v\n", name, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(e.stderr, "%s: no CPU profile: %v\n", name, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		heap := filepath.Join(e.opt.profile, name+"-heap.pprof")
		if h, err := os.Create(heap); err == nil {
			_ = pprof.Lookup("heap").WriteTo(h, 0)
			h.Close()
		}
		fmt.Fprintf(e.stderr, "%s: profiles: go tool pprof -top %s\n", name, path)
	}
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// workerProfiler collects profiles from a "worker run -pprof" process
// serving at addr, while it runs: consecutive CPU profiles of a few
// seconds each (go tool pprof merges them), and a heap profile each time
// the process's resident memory reaches a new peak.
type workerProfiler struct {
	e    *env
	name string
	addr string
	hc   *http.Client

	mu       sync.Mutex
	peakRSS  float64 // bytes, from process_resident_memory_bytes
	heapAtPk float64 // go_memstats_heap_inuse_bytes at that peak
	sysAtPk  float64 // go_memstats_sys_bytes at that peak
	cpuFiles []string
}

func startWorkerProfiler(ctx context.Context, e *env, name, addr string) (stop func()) {
	p := &workerProfiler{e: e, name: name, addr: addr, hc: &http.Client{}}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.cpu(ctx) })
	wg.Go(func() { p.memory(ctx) })
	return func() {
		cancel()
		wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(e.stderr, "%s: peak RSS seen %.1f MiB, heap in use then %.1f MiB, Go runtime's sys %.1f MiB; profiles: go tool pprof -top %s; go tool pprof -top -sample_index=inuse_space %s\n",
			name, p.peakRSS/(1<<20), p.heapAtPk/(1<<20), p.sysAtPk/(1<<20), strings.Join(p.cpuFiles, " "), filepath.Join(e.opt.profile, name+"-heap.pprof"))
	}
}

// get fetches a path of the worker's HTTP server into w.
func (p *workerProfiler) get(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// waitUp waits for the worker's HTTP server to answer.
func (p *workerProfiler) waitUp(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if p.get(ctx, "/healthz", io.Discard) == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (p *workerProfiler) cpu(ctx context.Context) {
	if !p.waitUp(ctx) {
		return
	}
	for i := 1; ctx.Err() == nil; i++ {
		path := filepath.Join(p.e.opt.profile, fmt.Sprintf("%s-cpu-%02d.pprof", p.name, i))
		f, err := os.Create(path)
		if err != nil {
			return
		}
		err = p.get(ctx, "/debug/pprof/profile?seconds=3", f)
		f.Close()
		if err != nil { // the worker exited during this one
			os.Remove(path)
			return
		}
		p.mu.Lock()
		p.cpuFiles = append(p.cpuFiles, path)
		p.mu.Unlock()
	}
}

func (p *workerProfiler) memory(ctx context.Context) {
	if !p.waitUp(ctx) {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var sb strings.Builder
		if err := p.get(ctx, "/metrics", &sb); err != nil {
			return
		}
		m := gauges(sb.String(), "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes")
		if rss := m["process_resident_memory_bytes"]; rss > p.peakRSS {
			tmp := filepath.Join(p.e.opt.profile, p.name+"-heap.pprof.tmp")
			if f, err := os.Create(tmp); err == nil {
				err = p.get(ctx, "/debug/pprof/heap", f)
				f.Close()
				if err == nil {
					_ = os.Rename(tmp, filepath.Join(p.e.opt.profile, p.name+"-heap.pprof"))
				}
			}
			p.mu.Lock()
			p.peakRSS, p.heapAtPk, p.sysAtPk = rss, m["go_memstats_heap_inuse_bytes"], m["go_memstats_sys_bytes"]
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gauges reads unlabelled samples of the given names from a Prometheus
// text exposition.
func gauges(text string, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[n] = v
				}
			}
		}
	}
	return out
}
