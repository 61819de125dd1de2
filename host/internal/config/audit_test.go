package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateAudit(t *testing.T) {
	cases := []struct {
		name string
		toml string
		want string // "" = valid
	}{
		{"defaults", "", ""},
		{"hmac with env", "[audit]\ncontent = \"hmac\"\nhmac_key_env = \"K\"\n", ""},
		{"hmac with file", "[audit]\ncontent = \"hmac\"\nhmac_key_file = \"k\"\n", ""},
		{"both key sources", "[audit]\ncontent = \"hmac\"\nhmac_key_env = \"K\"\nhmac_key_file = \"k\"\n", "not both"},
		{"bad content", "[audit]\ncontent = \"all\"\n", "audit.content"},
		{"interval fsync", "[audit]\nfsync = \"250ms\"\n", ""},
		{"bad fsync", "[audit]\nfsync = \"sometimes\"\n", "audit.fsync"},
		{"zero fsync", "[audit]\nfsync = \"0s\"\n", "audit.fsync"},
		{"negative size", "[audit]\nmax_size_mb = -1\n", "audit.max_size_mb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), "/etc/moat/config.toml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q (config %+v)", err, tc.want, c)
			}
		})
	}
	c, err := Parse(nil, "/etc/moat/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.Path != filepath.Join("/etc/moat", "audit.jsonl") || a.Content != "off" || a.FSync != "every" ||
		a.MaxSizeMB != 100 || a.HMACKeyEnv != "MOAT_AUDIT_HMAC_KEY" || a.FailOpen || a.Disabled {
		t.Fatalf("defaults: %+v", a)
	}
}
