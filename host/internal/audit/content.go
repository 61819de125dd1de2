package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Content modes (config audit.content).
const (
	ContentOff      = "off"
	ContentHMAC     = "hmac"
	ContentRedacted = "redacted"
	ContentFull     = "full"
)

// MinHMACKeyBytes is the shortest HMAC key Open accepts.
const MinHMACKeyBytes = 16

// Replacement texts.
const (
	secretMask   = "[SECRET]"
	redactedMask = "[REDACTED]"
	emailMask    = "[EMAIL]"
)

// keyShape matches strings shaped like an Anthropic key or a moat client
// key; they are scrubbed from every string field in every mode.
var keyShape = regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]{6,}|moat_[A-Za-z0-9_\-]{16,}`)

// defaultTokenPatterns are masked by DefaultRedact: API keys and tokens of
// common shapes, bearer tokens, JWTs, key=value credentials, long opaque
// tokens and card-like digit runs.
var defaultTokenPatterns = regexp.MustCompile(strings.Join([]string{
	`sk-ant-[A-Za-z0-9_\-]{6,}`,
	`moat_[A-Za-z0-9_\-]{8,}`,
	`\b(?:sk|pk|rk)[-_][A-Za-z0-9_\-]{16,}`,
	`\bAKIA[0-9A-Z]{16}\b`,
	`\bgh[pousr]_[A-Za-z0-9]{20,}`,
	`\bxox[abprs]-[A-Za-z0-9\-]{10,}`,
	`\bAIza[0-9A-Za-z_\-]{30,}`,
	`(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*`,
	`\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`,
	`(?i)\b(?:api[_-]?key|token|secret|password|passwd|pwd)\s*[:=]\s*\S+`,
	`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`,
	`\b[A-Za-z0-9_\-+/]{32,}={0,2}`,
	`\b(?:\d[ \-]?){13,19}\b`,
}, "|"))

var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)

// DefaultRedact is the redactor used in "redacted" mode when Options.Redact
// is nil. It is deliberately conservative: it masks e-mail addresses and
// anything shaped like an API key, token, credential assignment, private
// key, long opaque string or card number, accepting some false positives.
func DefaultRedact(s string) string {
	s = emailPattern.ReplaceAllString(s, emailMask)
	return defaultTokenPatterns.ReplaceAllString(s, redactedMask)
}

// contentPolicy applies the configured content mode and secret scrubbing.
type contentPolicy struct {
	mode    string
	key     []byte
	redact  func(string) string
	secrets func() []string
}

func newContentPolicy(cfg Config, opts Options) (*contentPolicy, error) {
	p := &contentPolicy{mode: cfg.Content, redact: opts.Redact, secrets: opts.Secrets}
	if p.mode == "" {
		p.mode = ContentOff
	}
	switch p.mode {
	case ContentOff, ContentFull:
	case ContentRedacted:
		if p.redact == nil {
			p.redact = DefaultRedact
		}
	case ContentHMAC:
		key, err := loadHMACKey(cfg)
		if err != nil {
			return nil, err
		}
		p.key = key
	default:
		return nil, fmt.Errorf("unknown audit content mode %q (want off, hmac, redacted or full)", cfg.Content)
	}
	return p, nil
}

func loadHMACKey(cfg Config) ([]byte, error) {
	var key []byte
	switch {
	case cfg.HMACKeyFile != "":
		b, err := os.ReadFile(cfg.HMACKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading audit hmac key file: %w", err)
		}
		key = []byte(strings.TrimSpace(string(b)))
	case cfg.HMACKeyEnv != "":
		v, ok := os.LookupEnv(cfg.HMACKeyEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrNoHMACKey, cfg.HMACKeyEnv)
		}
		key = []byte(v)
	default:
		return nil, fmt.Errorf("%w: set audit.hmac_key_env or audit.hmac_key_file", ErrNoHMACKey)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: key file %s is empty", ErrNoHMACKey, cfg.HMACKeyFile)
	}
	if len(key) < MinHMACKeyBytes {
		return nil, fmt.Errorf("audit hmac key is %d bytes; at least %d are required", len(key), MinHMACKeyBytes)
	}
	return key, nil
}

func (p *contentPolicy) digest(s string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// apply sets the content fields of rec from its raw Input and Output,
// clearing whatever the caller put there.
func (p *contentPolicy) apply(rec *Record) {
	rec.ContentMode, rec.InputHMAC, rec.OutputHMAC, rec.InputContent, rec.OutputContent = "", "", "", "", ""
	if p.mode == ContentOff {
		return
	}
	rec.ContentMode = p.mode
	switch p.mode {
	case ContentHMAC:
		if rec.Input != "" {
			rec.InputHMAC = p.digest(rec.Input)
		}
		if rec.Output != "" {
			rec.OutputHMAC = p.digest(rec.Output)
		}
	case ContentRedacted:
		rec.InputContent = p.redact(rec.Input)
		rec.OutputContent = p.redact(rec.Output)
	case ContentFull:
		rec.InputContent = rec.Input
		rec.OutputContent = rec.Output
	}
}

// scrub removes secrets and key-shaped strings from every string field of
// rec that is written.
func (p *contentPolicy) scrub(rec *Record) {
	var secrets []string
	if p.secrets != nil {
		for _, s := range p.secrets() {
			if s != "" {
				secrets = append(secrets, s)
			}
		}
		// Longest first, so a secret containing another is masked whole.
		sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	}
	sc := func(s *string) { *s = scrubString(*s, secrets) }
	sc(&rec.RequestID)
	sc(&rec.Environment)
	sc(&rec.Client)
	sc(&rec.User)
	sc(&rec.SourceIP)
	sc(&rec.Endpoint)
	sc(&rec.Route)
	sc(&rec.Model)
	sc(&rec.Decision)
	sc(&rec.DecidedBy)
	sc(&rec.UpstreamRequestID)
	sc(&rec.Error)
	sc(&rec.Cause)
	sc(&rec.ContentMode)
	sc(&rec.InputHMAC)
	sc(&rec.OutputHMAC)
	sc(&rec.InputContent)
	sc(&rec.OutputContent)
	if len(rec.Plugins) > 0 {
		// Copy so the caller's slice is not modified behind its back.
		ps := make([]PluginVerdict, len(rec.Plugins))
		copy(ps, rec.Plugins)
		for i := range ps {
			sc(&ps[i].Name)
			sc(&ps[i].Phase)
			sc(&ps[i].Action)
			sc(&ps[i].Reason)
			sc(&ps[i].Cause)
		}
		rec.Plugins = ps
	}
}

func scrubString(s string, secrets []string) string {
	if s == "" {
		return s
	}
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, secretMask)
		}
	}
	if strings.Contains(s, "sk-ant-") || strings.Contains(s, "moat_") {
		s = keyShape.ReplaceAllString(s, secretMask)
	}
	return s
}
