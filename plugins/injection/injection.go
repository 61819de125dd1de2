// Package injection is the injection-heuristics built-in: it scores a text
// for prompt-injection and jailbreak signals and rejects (or flags) it when
// the score reaches a threshold.
//
// The score adds, per category of signal (instruction override, prompt
// extraction, role-play framing, rule removal, policy-evasion vocabulary,
// output coercion, harm vocabulary, addressing a chat model), the weight of
// the strongest rule hit plus a quarter of the weight of each further
// distinct rule of that category (at most two), and a bonus when three or
// more categories co-occur. A single benign use of a trigger word ("can I
// ignore this warning?", "explain what a jailbreak is") stays below the
// default threshold; jailbreaks, which stack several signals, do not. Rules
// are written for English, Spanish, French, German, Portuguese, Italian and
// Russian (words, accents folded) and Chinese and Japanese (substrings).
package injection

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
)

// DefaultThreshold is the score at which a text is flagged when the config
// sets no threshold.
const DefaultThreshold = 3.5

// Actions for Config.Action.
const (
	ActionReject = "reject"
	ActionFlag   = "flag"
)

// Config is the plugin's config table.
type Config struct {
	// Threshold is the score at which a text is flagged; zero means
	// DefaultThreshold.
	Threshold float64 `json:"threshold"`
	// Action is "reject" (the default when empty) or "flag", which allows
	// the text and reports the findings.
	Action string `json:"action"`
}

func (c Config) normalized() (Config, error) {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Threshold < 0 {
		return c, fmt.Errorf("threshold must be positive, got %v", c.Threshold)
	}
	switch c.Action {
	case "":
		c.Action = ActionReject
	case ActionReject, ActionFlag:
	default:
		return c, fmt.Errorf("action must be %q or %q, got %q", ActionReject, ActionFlag, c.Action)
	}
	return c, nil
}

var configs cfgcache.Cache[Config]

func loadConfig(req *abi.Request) (Config, error) {
	return configs.Get(req.Config, func([]byte) (Config, error) {
		var c Config
		if err := req.DecodeConfig(&c); err != nil {
			return c, err
		}
		return c.normalized()
	})
}

// Input is the input-phase handler.
func Input(req abi.Request) abi.Verdict {
	cfg, err := loadConfig(&req)
	if err != nil {
		return abi.RejectVerdict("injection-heuristics: " + err.Error())
	}
	return judge(req.Text, cfg)
}

func judge(text string, cfg Config) abi.Verdict {
	r := Score(text)
	if r.Score < cfg.Threshold {
		return abi.AllowVerdict()
	}
	reason := fmt.Sprintf("injection-heuristics: score %.1f >= %.1f (%s)", r.Score, cfg.Threshold, strings.Join(r.Categories, ", "))
	v := abi.RejectVerdict(reason)
	if cfg.Action == ActionFlag {
		v = abi.AllowVerdict()
		v.Reason = reason
	}
	v.Findings = r.Findings
	return v
}

// Result is the outcome of scoring one text.
type Result struct {
	// Score is the total; compare it with a threshold.
	Score float64
	// Categories names the categories hit, strongest first.
	Categories []string
	// Findings locates each distinct rule hit (Rule is its category).
	Findings []abi.Finding
}

// Score scores text. It allocates only when some rule matches.
func Score(text string) Result {
	var hits [numCategories]struct {
		best, extra float64
		n           int
	}
	var res Result
	record := func(cat category, weight float64, start, end int) {
		h := &hits[cat]
		if weight > h.best {
			h.extra += h.best / 4
			h.best = weight
		} else {
			h.extra += weight / 4
		}
		h.n++
		if h.n > 3 { // at most two extras count
			h.extra = min(h.extra, 2*h.best/4)
		}
		res.Findings = append(res.Findings, abi.Finding{Rule: cat.String(), Start: start, End: end})
	}

	tz := tokPool.Get().(*tokenizer)
	tz.tokenize(text)
	var seen [maxWordRules]bool // each rule counts once
	toks := tz.toks
	for i := range toks {
		for _, r := range compiled.byFirst(toks[i], text) {
			if seen[r.id] {
				continue
			}
			if end, ok := r.matchAt(toks, i, text); ok {
				seen[r.id] = true
				record(r.cat, r.weight, toks[i].start, toks[end].end)
			}
		}
	}
	wide := tz.wide
	tokPool.Put(tz)
	if wide {
		for i := range compiled.pairs {
			p := &compiled.pairs[i]
			if s, e, ok := p.find(text); ok {
				record(p.cat, p.weight, s, e)
			}
		}
	}

	cats := 0
	for c := range hits {
		if hits[c].n == 0 {
			continue
		}
		cats++
		res.Score += hits[c].best + hits[c].extra
	}
	switch {
	case cats >= 4:
		res.Score += 1
	case cats == 3:
		res.Score += 0.5
	}
	if cats > 0 {
		order := make([]category, 0, cats)
		for c := range hits {
			if hits[c].n > 0 {
				order = append(order, category(c))
			}
		}
		slices.SortStableFunc(order, func(a, b category) int {
			sa, sb := hits[a].best+hits[a].extra, hits[b].best+hits[b].extra
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		for _, c := range order {
			res.Categories = append(res.Categories, c.String())
		}
	}
	return res
}

// ruleSet is the compiled rule table.
type ruleSet struct {
	words     []*wordRule
	first     map[string][]*wordRule // by exact first word
	firstMisc []*wordRule            // first slot has prefixes or exact-case forms
	pairs     []pairRule

	// firstLens has, in the slot firstSlot gives a word in first, bit n
	// set when such a word has n bytes (bit 63: 63 or more), so that most
	// tokens skip the map lookup.
	firstLens [firstSlots]uint64
	// miscByByte holds the rules of firstMisc (in firstMisc order) whose
	// first slot can match a token starting with that byte.
	miscByByte [256][]*wordRule
}

var compiled = compile()

// maxWordRules bounds the rule table so per-call bookkeeping fits on the
// stack.
const maxWordRules = 256

func compile() *ruleSet {
	if len(wordRules) > maxWordRules {
		panic("injection: too many word rules")
	}
	rs := &ruleSet{first: map[string][]*wordRule{}}
	for i, spec := range wordRules {
		r := &wordRule{id: i, cat: spec.cat, weight: spec.weight, src: spec.pattern, slots: parseWordRule(spec.pattern)}
		rs.words = append(rs.words, r)
		for _, w := range r.slots[0].words {
			rs.first[w] = append(rs.first[w], r)
		}
		if len(r.slots[0].prefixes) > 0 || len(r.slots[0].exact) > 0 {
			rs.firstMisc = append(rs.firstMisc, r)
		}
	}
	for w := range rs.first {
		rs.firstLens[firstSlot(w)] |= lenBit(len(w))
	}
	for _, r := range rs.firstMisc {
		for _, b := range firstBytes(&r.slots[0]) {
			rs.miscByByte[b] = append(rs.miscByByte[b], r)
		}
	}
	for i, p := range pairRules {
		rs.pairs = append(rs.pairs, pairRule{id: i, cat: p.cat, weight: p.weight, first: p.first, second: p.second, window: 60})
	}
	return rs
}

func lenBit(n int) uint64 { return 1 << min(n, 63) }

// firstSlots is the size of the first-word filter.
const firstSlots = 4096

// firstSlot mixes the first and last bytes of a non-empty word.
func firstSlot(w string) int { return (int(w[0])*61 + int(w[len(w)-1])) & (firstSlots - 1) }

// firstBytes lists the first bytes a token's folded word can have when s
// matches it: the first byte of each word and prefix, and of the folded
// form of each case-sensitive word. An empty prefix, or a case-sensitive
// word that does not fold to one token, can match anything: every byte.
func firstBytes(s *slot) []byte {
	var bs []byte
	all := func() []byte {
		out := make([]byte, 256)
		for i := range out {
			out[i] = byte(i)
		}
		return out
	}
	for _, w := range s.words {
		if w == "" {
			return all()
		}
		bs = append(bs, w[0])
	}
	for _, p := range s.prefixes {
		if p == "" {
			return all()
		}
		bs = append(bs, p[0])
	}
	for _, e := range s.exact {
		var tz tokenizer
		tz.tokenize(e)
		if len(tz.toks) != 1 || tz.toks[0].start != 0 || tz.toks[0].end != len(e) || tz.toks[0].word == "" {
			return all()
		}
		bs = append(bs, tz.toks[0].word[0])
	}
	slices.Sort(bs)
	return slices.Compact(bs)
}

// byFirst returns the rules whose first slot matches t: those whose first
// word is t's, then those with prefixes or case-sensitive forms that match,
// in table order. The common case (no prefix rule applies) returns a slice
// of the table without allocating.
func (rs *ruleSet) byFirst(t token, text string) []*wordRule {
	if t.word == "" {
		return nil // a token holds at least one byte; kept for safety
	}
	b := t.word[0]
	var exact []*wordRule
	if rs.firstLens[firstSlot(t.word)]&lenBit(len(t.word)) != 0 {
		exact = rs.first[t.word]
	}
	var misc []*wordRule
	for _, r := range rs.miscByByte[b] {
		if r.slots[0].match(t, text) && !slices.Contains(exact, r) {
			misc = append(misc, r)
		}
	}
	if misc == nil {
		return exact
	}
	return append(slices.Clip(exact), misc...)
}
