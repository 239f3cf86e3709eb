package backend

import (
	"fmt"
	"slices"
	"strings"
)

// Waiver accepts the failure of one probe, for a reason.
type Waiver struct {
	Probe  string
	Reason string
}

// Judgement is what the capability probe decided.
type Judgement struct {
	Passed  []string      // capabilities the store has
	Waived  []Waiver      // required capabilities it lacks, accepted by a waiver
	Refused []ProbeResult // required capabilities it lacks, with no waiver
	Missing []ProbeResult // capabilities it lacks that nothing requires
}

// OK reports whether the store is accepted.
func (j *Judgement) OK() bool { return len(j.Refused) == 0 }

// Judge applies the required capabilities and the waivers to the probe's
// results. A required capability the probe did not report counts as
// failed: a store is never accepted on a check that did not run.
func Judge(results []ProbeResult, required []string, waivers []Waiver) *Judgement {
	j := &Judgement{}
	byName := map[string]ProbeResult{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for _, r := range results {
		if r.OK {
			j.Passed = append(j.Passed, r.Name)
		}
	}
	for _, name := range required {
		r, ok := byName[name]
		if !ok {
			r = ProbeResult{Name: name, Detail: "the probe did not check it"}
		}
		if r.OK {
			continue
		}
		if i := slices.IndexFunc(waivers, func(w Waiver) bool { return w.Probe == name }); i >= 0 {
			j.Waived = append(j.Waived, waivers[i])
			continue
		}
		j.Refused = append(j.Refused, r)
	}
	for _, r := range results {
		if !r.OK && !slices.Contains(required, r.Name) {
			j.Missing = append(j.Missing, r)
		}
	}
	return j
}

// String says what was refused, or what was accepted.
func (j *Judgement) String() string {
	if !j.OK() {
		var parts []string
		for _, r := range j.Refused {
			parts = append(parts, r.Name+": "+r.Detail)
		}
		return "the store lacks " + strings.Join(parts, "; ")
	}
	s := fmt.Sprintf("passed %s", strings.Join(j.Passed, ", "))
	for _, w := range j.Waived {
		s += fmt.Sprintf("; %s waived (%s)", w.Probe, w.Reason)
	}
	return s
}

// probeOf maps a verification check to the capability probe whose waiver
// accepts it: a store accepted without a capability does not drift from it.
var probeOf = map[string]string{
	"versioning":    ProbeVersioning,
	"encryption":    ProbeEncryption,
	"key":           ProbeEncryption,
	"tags":          ProbeCreateTags,
	"public_access": ProbePublicAccessBlock,
}

// Waived splits findings into those that are drift and those that a waiver
// in the lock accepts.
func Waived(findings []Finding, waived []string) (drift, accepted []Finding) {
	for _, f := range findings {
		if p, ok := probeOf[f.Check]; ok && slices.Contains(waived, p) {
			accepted = append(accepted, f)
			continue
		}
		drift = append(drift, f)
	}
	return drift, accepted
}
