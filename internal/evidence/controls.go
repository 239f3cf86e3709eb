package evidence

import (
	_ "embed"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed controls.yaml
var controlsYAML []byte

// Control is one control of a framework.
type Control struct {
	Key       string // framework prefix and id: "ISO27001:2022 A.8.15"
	Framework string // the framework's name
	ID        string // "A.8.15"
	Title     string
}

// Framework is a control framework.
type Framework struct {
	Name     string
	Prefix   string
	Controls []Control
}

// Evidence says why a class of evidence evidences a control.
type Evidence struct {
	Control string // Control.Key
	Why     string
}

// Class is a class of evidence: what it is and what it evidences.
type Class struct {
	Name      string
	What      string
	Evidences []Evidence
}

// Mapping maps classes of evidence to controls.
type Mapping struct {
	Frameworks []Framework
	Classes    []Class
}

var mapping = func() *Mapping {
	m, err := ParseMapping(controlsYAML)
	if err != nil {
		panic("controls.yaml: " + err.Error())
	}
	return m
}()

// Controls returns the embedded control mapping.
func Controls() *Mapping { return mapping }

// ParseMapping reads a control mapping, keeping the order it is written in
// and refusing unknown controls, duplicate keys and rationales left empty.
func ParseMapping(data []byte) (*Mapping, error) {
	var doc struct {
		Frameworks []struct {
			Name     string    `yaml:"name"`
			Prefix   string    `yaml:"prefix"`
			Controls yaml.Node `yaml:"controls"`
		} `yaml:"frameworks"`
		Classes []struct {
			Class     string    `yaml:"class"`
			What      string    `yaml:"what"`
			Evidences yaml.Node `yaml:"evidences"`
		} `yaml:"classes"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	m := &Mapping{}
	known := map[string]bool{}
	for _, f := range doc.Frameworks {
		fw := Framework{Name: f.Name, Prefix: f.Prefix}
		pairs, err := orderedMap(&f.Controls)
		if err != nil {
			return nil, fmt.Errorf("framework %s: %v", f.Name, err)
		}
		for _, p := range pairs {
			c := Control{Key: f.Prefix + " " + p[0], Framework: f.Name, ID: p[0], Title: p[1]}
			if known[c.Key] {
				return nil, fmt.Errorf("control %s listed twice", c.Key)
			}
			known[c.Key] = true
			fw.Controls = append(fw.Controls, c)
		}
		m.Frameworks = append(m.Frameworks, fw)
	}
	classes := map[string]bool{}
	for _, c := range doc.Classes {
		if c.Class == "" || classes[c.Class] || c.What == "" {
			return nil, fmt.Errorf("class %q is unnamed, undescribed or listed twice", c.Class)
		}
		classes[c.Class] = true
		cl := Class{Name: c.Class, What: c.What}
		pairs, err := orderedMap(&c.Evidences)
		if err != nil {
			return nil, fmt.Errorf("class %s: %v", c.Class, err)
		}
		for _, p := range pairs {
			if !known[p[0]] {
				return nil, fmt.Errorf("class %s names unknown control %q", c.Class, p[0])
			}
			cl.Evidences = append(cl.Evidences, Evidence{Control: p[0], Why: p[1]})
		}
		m.Classes = append(m.Classes, cl)
	}
	return m, nil
}

// orderedMap reads a YAML mapping of strings to non-empty strings in order.
func orderedMap(n *yaml.Node) ([][2]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping", n.Line)
	}
	seen := map[string]bool{}
	var out [][2]string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Value == "" {
			return nil, fmt.Errorf("line %d: want KEY: one-line text", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: %s listed twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		out = append(out, [2]string{k.Value, v.Value})
	}
	return out, nil
}

// Class returns the class named name, or nil.
func (m *Mapping) Class(name string) *Class {
	for i := range m.Classes {
		if m.Classes[i].Name == name {
			return &m.Classes[i]
		}
	}
	return nil
}

// ControlsOf returns the keys of the controls a class evidences.
func (m *Mapping) ControlsOf(class string) []string {
	out := []string{}
	if c := m.Class(class); c != nil {
		for _, e := range c.Evidences {
			out = append(out, e.Control)
		}
	}
	return out
}

// EvidenceFor returns, for a control, the classes that evidence it and why.
func (m *Mapping) EvidenceFor(key string) []Evidence {
	var out []Evidence
	for _, c := range m.Classes {
		for _, e := range c.Evidences {
			if e.Control == key {
				out = append(out, Evidence{Control: c.Name, Why: e.Why})
			}
		}
	}
	return out
}

// Table renders the mapping as the README's Markdown table: one row per
// control, with the classes of evidence for it and why.
func (m *Mapping) Table() string {
	var b strings.Builder
	b.WriteString("| framework | control | evidence in the bundle (class: why) |\n|---|---|---|\n")
	for _, f := range m.Frameworks {
		for _, c := range f.Controls {
			var cells []string
			for _, e := range m.EvidenceFor(c.Key) {
				cells = append(cells, "`"+e.Control+"`: "+e.Why)
			}
			if len(cells) == 0 {
				cells = []string{"none"}
			}
			fmt.Fprintf(&b, "| %s | %s %s | %s |\n", f.Prefix, c.ID, c.Title, strings.Join(cells, "<br>"))
		}
	}
	return b.String()
}
