package config

import (
	"strings"
	"testing"
)

func TestValidateAuth(t *testing.T) {
	const hash = "0000000000000000000000000000000000000000000000000000000000000001"
	client := "[[clients]]\nid = \"spa\"\nkey_sha256 = \"" + hash + "\"\n"
	cases := []struct {
		name string
		toml string
		want string // "" = valid
	}{
		{"jwt off", client, ""},
		{"jwt hs256", client + "[jwt]\nenabled = true\nclient = \"spa\"\nsecret_env = \"S\"\n", ""},
		{"jwt rs256 jwks", client + "[jwt]\nenabled = true\nclient = \"spa\"\nalgorithms = [\"RS256\"]\njwks_file = \"jwks.json\"\n", ""},
		{"jwt no key", client + "[jwt]\nenabled = true\nclient = \"spa\"\n", "set secret_env"},
		{"jwt no client", client + "[jwt]\nenabled = true\nsecret_env = \"S\"\n", "jwt.client: is required"},
		{"jwt unknown client", client + "[jwt]\nenabled = true\nclient = \"x\"\nsecret_env = \"S\"\n", "no [[clients]] block"},
		{"jwt two secrets", client + "[jwt]\nenabled = true\nclient = \"spa\"\nsecret_env = \"S\"\nsecret_file = \"s\"\n", "not both"},
		{"jwt pem and jwks", client + "[jwt]\nenabled = true\nclient = \"spa\"\npublic_key_file = \"p\"\njwks_file = \"j\"\n", "not both"},
		{"jwt alg mismatch", client + "[jwt]\nenabled = true\nclient = \"spa\"\nalgorithms = [\"RS256\"]\nsecret_env = \"S\"\n", "can use the configured key"},
		{"jwt bad alg", client + "[jwt]\nenabled = true\nclient = \"spa\"\nalgorithms = [\"none\"]\nsecret_env = \"S\"\n", "unsupported algorithm"},
		{"jwt big leeway", client + "[jwt]\nenabled = true\nclient = \"spa\"\nsecret_env = \"S\"\nleeway = \"1h\"\n", "jwt.leeway"},
		{"cors ok", client + "cors_origins = [\"https://app.example.com\", \"http://localhost:5173\"]\n", ""},
		{"cors wildcard", client + "cors_origins = [\"*\"]\n", "wildcards"},
		{"cors path", client + "cors_origins = [\"https://app.example.com/app\"]\n", "no path"},
		{"cors scheme", client + "cors_origins = [\"app.example.com\"]\n", "must be an origin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), "/etc/moat/config.toml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.JWT.JWKSFile != "" && c.JWT.JWKSFile != "/etc/moat/jwks.json" {
					t.Fatalf("jwks_file not resolved against the config: %q", c.JWT.JWKSFile)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, tc.want)
			}
		})
	}
}
