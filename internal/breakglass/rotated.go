package breakglass

import (
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/groundzero/groundzero/internal/strictyaml"
)

//go:embed rotated.schema.json
var rotatedSchemaJSON []byte

var rotatedSchema = strictyaml.MustCompile("rotated.schema.json", rotatedSchemaJSON)

// Rotated is the rotation evidence a close is given (a YAML file):
//
//	keys:          # emergency keys used under the window, rotated
//	  - {name: emergency-admin, old_fingerprint: <FPR>, new_fingerprint: <FPR>}
//	credentials:   # credentials rotated, and where the new ones are kept
//	  - {name: ci-deploy, stored_in: "vault:secret/ci/deploy"}
//	access:        # temporary access granted under the window
//	  - {name: alice-admin-session}
//
// A fingerprint is an OpenPGP v4 (40 hex) or v5/v6 (64 hex) fingerprint in
// upper case, or an SSH "SHA256:…" fingerprint. Every rotated key and every
// access listed gets a revocation. No secret belongs in the file: it names
// credentials and where they are kept, never their values.
type Rotated struct {
	Keys []struct {
		Name           string `yaml:"name"`
		OldFingerprint string `yaml:"old_fingerprint"`
		NewFingerprint string `yaml:"new_fingerprint"`
	} `yaml:"keys"`
	Credentials []struct {
		Name     string `yaml:"name"`
		StoredIn string `yaml:"stored_in"`
	} `yaml:"credentials"`
	Access []struct {
		Name string `yaml:"name"`
	} `yaml:"access"`
}

// Rotation is one rotation as the close record keeps it. Kind is "key",
// "credential" or "access".
type Rotation struct {
	Kind           string `json:"kind"`
	Name           string `json:"name"`
	NewFingerprint string `json:"new_fingerprint"`
	OldFingerprint string `json:"old_fingerprint"`
	StoredIn       string `json:"stored_in"`
}

// ParseRotated reads rotation evidence; errors name file:line.
func ParseRotated(file string, data []byte) (*Rotated, error) {
	var r Rotated
	if err := strictyaml.Decode(file, data, rotatedSchema, &r); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &strictyaml.Error{File: file, Msg: err.Error()}
	}
	lines := itemLines(&doc)
	at := func(section string, i int, format string, args ...any) error {
		line := 0
		if l := lines[section]; i < len(l) {
			line = l[i]
		}
		return &strictyaml.Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...),
			Hint: "list each rotated key once, with its old and its new fingerprint"}
	}
	seen := map[string]bool{}
	for i, k := range r.Keys {
		switch {
		case k.OldFingerprint == k.NewFingerprint:
			return nil, at("keys", i, "key %s: new_fingerprint is old_fingerprint: the key was not rotated", k.Name)
		case seen["key "+k.Name]:
			return nil, at("keys", i, "key %s is listed twice", k.Name)
		}
		seen["key "+k.Name] = true
	}
	for i, c := range r.Credentials {
		if seen["credential "+c.Name] {
			return nil, at("credentials", i, "credential %s is listed twice", c.Name)
		}
		seen["credential "+c.Name] = true
	}
	for i, a := range r.Access {
		if seen["access "+a.Name] {
			return nil, at("access", i, "access %s is listed twice", a.Name)
		}
		seen["access "+a.Name] = true
	}
	return &r, nil
}

// Rotations lists the evidence as the close record keeps it.
func (r *Rotated) Rotations() []Rotation {
	out := []Rotation{}
	if r == nil {
		return out
	}
	for _, k := range r.Keys {
		out = append(out, Rotation{Kind: "key", Name: k.Name, OldFingerprint: k.OldFingerprint, NewFingerprint: k.NewFingerprint})
	}
	for _, c := range r.Credentials {
		out = append(out, Rotation{Kind: "credential", Name: c.Name, StoredIn: c.StoredIn})
	}
	for _, a := range r.Access {
		out = append(out, Rotation{Kind: "access", Name: a.Name})
	}
	return out
}

// itemLines maps each top-level section to the line of each of its items.
func itemLines(doc *yaml.Node) map[string][]int {
	out := map[string][]int{}
	if doc == nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		for _, item := range m.Content[i+1].Content {
			out[m.Content[i].Value] = append(out[m.Content[i].Value], item.Line)
		}
	}
	return out
}
