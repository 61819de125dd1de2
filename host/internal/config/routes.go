package config

import (
	"fmt"
	"os"
)

// Route is a server-held prompt: the client sends only data.
type Route struct {
	Name  string `toml:"name"`
	Model string `toml:"model"`
	// System is the system prompt; SystemFile reads it from a file.
	System     string `toml:"system"`
	SystemFile string `toml:"system_file"`
	// Task is the instruction template; {{input}} and {{var.NAME}} mark where
	// the wrapped data goes. Without a marker the data follows the task.
	Task        string   `toml:"task"`
	MaxTokens   int      `toml:"max_tokens"`
	Temperature *float64 `toml:"temperature"`
	// Stream allows "stream": true.
	Stream bool `toml:"stream"`
	// Input and Output override [pipeline] when set.
	Input  *[]string `toml:"input"`
	Output *[]string `toml:"output"`
	// Format is "text" or "json"; Schema is a JSON Schema for "json".
	Format        string         `toml:"format"`
	Schema        map[string]any `toml:"schema"`
	RepairRetries int            `toml:"repair_retries"`
	// Tag is the wrapper's tag name (default user_input).
	Tag string `toml:"tag"`
	// Label is the sentence around the wrapper telling the model that the
	// wrapped text is data; "" is prompt.DefaultLabel.
	Label string `toml:"label"`
	// Canary puts a random per-request canary in the system prompt.
	Canary bool `toml:"canary"`
	// Clients may call the route; empty means none but clients listing the
	// route in their own routes.
	Clients []string `toml:"clients"`
	// Variables names the variables the route accepts.
	Variables []string `toml:"variables"`
	// MaxInputBytes caps the input and each variable; default 100000.
	MaxInputBytes int `toml:"max_input_bytes"`

	// SystemText is System or the content of SystemFile, set by Load.
	SystemText string `toml:"-"`
}

func (r *Route) applyDefaults() {
	if r.Tag == "" {
		r.Tag = "user_input"
	}
	if r.Format == "" {
		r.Format = "text"
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = 1024
	}
	if r.MaxInputBytes == 0 {
		r.MaxInputBytes = 100000
	}
}

func (c *Config) validateRoutes(p *problems) {
	seen := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			p.add(key+".name", "is required")
		} else {
			key = fmt.Sprintf("routes[%q]", r.Name)
			if seen[r.Name] {
				p.add(key+".name", "duplicate route name")
			}
			seen[r.Name] = true
			if !validTag(r.Name) {
				p.add(key+".name", "must be letters, digits, '_' or '-'")
			}
		}
		if r.Model == "" {
			p.add(key+".model", "is required")
		}
		if r.System != "" && r.SystemFile != "" {
			p.add(key, "set system or system_file, not both")
		}
		r.SystemText = r.System
		if r.SystemFile != "" {
			b, err := os.ReadFile(c.resolve(r.SystemFile))
			if err != nil {
				p.add(key+".system_file", "%v", err)
			}
			r.SystemText = string(b)
		}
		if r.Task == "" {
			p.add(key+".task", "is required")
		}
		if r.MaxTokens < 1 {
			p.add(key+".max_tokens", "must be positive")
		}
		if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 1) {
			p.add(key+".temperature", "must be between 0 and 1")
		}
		switch r.Format {
		case "text":
			if r.Schema != nil {
				p.add(key+".schema", "only applies to format = \"json\"")
			}
		case "json":
		default:
			p.add(key+".format", "must be \"text\" or \"json\", got %q", r.Format)
		}
		if !validTag(r.Tag) {
			p.add(key+".tag", "must be a tag name of letters, digits, '_' or '-', got %q", r.Tag)
		}
		if r.Input != nil {
			for _, name := range *r.Input {
				c.checkPluginRef(p, key+".input", name)
			}
		}
		if r.Output != nil {
			for _, name := range *r.Output {
				c.checkPluginRef(p, key+".output", name)
			}
		}
		for _, id := range r.Clients {
			if _, ok := c.Client(id); !ok {
				p.add(key+".clients", "names client %q, which no [[clients]] block defines", id)
			}
		}
	}
}
