package main

// This file draws the sample data from one seeded source: companies, their
// engagement ids and the times their records changed.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// generator draws the sample data from one seeded source.
type generator struct {
	rng *rand.Rand
	ids map[string]bool
	now time.Time
}

func (g *generator) pick(n int) int { return g.rng.IntN(n) }

func (g *generator) engagementID() string {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	for {
		b := make([]byte, 14)
		for i := range b {
			b[i] = chars[g.pick(len(chars))]
		}
		id := "eng-" + string(b)
		if !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *generator) company() *company {
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	r := g.pick(total)
	var ct country
	for _, c := range countries {
		if r < c.weight {
			ct = c
			break
		}
		r -= c.weight
	}
	ind := industries[g.pick(len(industries))]
	stem := ct.stems[g.pick(len(ct.stems))]
	suffix := ind.suffixes[g.pick(len(ind.suffixes))]
	short := stem + " " + suffix
	c := &company{
		eng:      g.engagementID(),
		name:     short + " " + ct.legal[g.pick(len(ct.legal))],
		short:    short,
		slug:     strings.ToLower(strings.ReplaceAll(short, " ", "-")),
		industry: ind.industry,
		idea:     ind.ideas[g.pick(len(ind.ideas))],
		country:  ct.code,
		city:     ct.places[g.pick(len(ct.places))],
		segment:  ct.segment[g.pick(len(ct.segment))],
		contact:  ct.people[g.pick(len(ct.people))],
		// Obviously fictional: the +1 555 range is reserved for fiction.
		phone:    fmt.Sprintf("+1555%07d", g.pick(10_000_000)),
		seededAt: g.now.Add(-time.Duration(30+g.pick(60)) * 24 * time.Hour),
	}
	return c
}

// changeTimes draws k times at which a CRM record changed yesterday, in
// order, a minute or more apart.
func (g *generator) changeTimes(k int) []time.Time {
	day := g.now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	var out []time.Time
	for len(out) < k {
		t := day.Add(7*time.Hour + time.Duration(g.pick(16*60))*time.Minute)
		if !slices.ContainsFunc(out, func(u time.Time) bool { return u.Equal(t) }) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}
