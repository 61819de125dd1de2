package limit

import (
	"math"
	"sort"
	"strings"
)

// Usage is the token usage of one call, as Anthropic reports it.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
}

// Tokens is the total counted against token limits and token budgets:
// every input token (cached or not) plus output tokens.
func (u Usage) Tokens() int64 {
	return clamp0(u.InputTokens) + clamp0(u.OutputTokens) + clamp0(u.CacheCreationInputTokens) + clamp0(u.CacheReadInputTokens)
}

func clamp0(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}

// DefaultPricing is used for models that Config.Pricing does not name,
// matched by the longest key that prefixes the model name. USD per million
// tokens, as published by Anthropic; cache write is 1.25x input and cache
// read 0.1x input. A model that matches neither Config.Pricing nor this
// table is priced at the most expensive known model, so a budget errs on
// the safe side.
var DefaultPricing = map[string]Pricing{
	"claude-opus-4":          {Input: 5, Output: 25},
	"claude-opus-4-0":        {Input: 15, Output: 75},
	"claude-opus-4-1":        {Input: 15, Output: 75},
	"claude-opus-4-20250514": {Input: 15, Output: 75},
	"claude-sonnet-4":        {Input: 3, Output: 15},
	"claude-haiku-4":         {Input: 1, Output: 5},
}

// priceTable resolves a model name to per-token prices in nano-USD.
type priceTable struct {
	configured map[string]Pricing
	keys       []string // configured then default keys, longest first
	max        price
}

// price is nano-USD per token (USD per MTok * 1000).
type price struct{ in, out, cacheWrite, cacheRead float64 }

func toPrice(p Pricing) price {
	pr := price{in: p.Input * 1000, out: p.Output * 1000, cacheWrite: p.CacheWrite * 1000, cacheRead: p.CacheRead * 1000}
	if p.CacheWrite == 0 {
		pr.cacheWrite = pr.in * 1.25
	}
	if p.CacheRead == 0 {
		pr.cacheRead = pr.in * 0.1
	}
	return pr
}

func newPriceTable(configured map[string]Pricing) *priceTable {
	t := &priceTable{configured: configured}
	seen := map[string]bool{}
	for _, m := range []map[string]Pricing{configured, DefaultPricing} {
		for k, p := range m {
			pr := toPrice(p)
			t.max.in = math.Max(t.max.in, pr.in)
			t.max.out = math.Max(t.max.out, pr.out)
			t.max.cacheWrite = math.Max(t.max.cacheWrite, pr.cacheWrite)
			t.max.cacheRead = math.Max(t.max.cacheRead, pr.cacheRead)
			k = strings.TrimSuffix(k, "*")
			if !seen[k] {
				seen[k] = true
				t.keys = append(t.keys, k)
			}
		}
	}
	sort.Slice(t.keys, func(i, j int) bool {
		if len(t.keys[i]) != len(t.keys[j]) {
			return len(t.keys[i]) > len(t.keys[j])
		}
		return t.keys[i] < t.keys[j]
	})
	return t
}

// lookup returns the model's prices: an exact Config.Pricing key, else the
// longest prefix among Config.Pricing and DefaultPricing keys
// (Config.Pricing wins a tie), else the most expensive known prices.
func (t *priceTable) lookup(model string) price {
	if p, ok := t.configured[model]; ok {
		return toPrice(p)
	}
	for _, k := range t.keys {
		if !strings.HasPrefix(model, k) {
			continue
		}
		if p, ok := t.configured[k]; ok {
			return toPrice(p)
		}
		if p, ok := t.configured[k+"*"]; ok {
			return toPrice(p)
		}
		return toPrice(DefaultPricing[k])
	}
	return t.max
}

// nanoCost is the cost of u in nano-USD.
func (p price) nanoCost(u Usage) int64 {
	c := float64(clamp0(u.InputTokens))*p.in + float64(clamp0(u.OutputTokens))*p.out +
		float64(clamp0(u.CacheCreationInputTokens))*p.cacheWrite + float64(clamp0(u.CacheReadInputTokens))*p.cacheRead
	return satInt64(math.Round(c))
}

// worstCase is the most a call with this many input tokens and this
// max_tokens can cost: every input token priced at the dearer of input and
// cache write, every output token produced.
func (p price) worstCase(in, maxOut int64) int64 {
	return satInt64(math.Ceil(float64(in)*math.Max(p.in, p.cacheWrite) + float64(maxOut)*p.out))
}

// maxNano bounds costs: a float beyond int64's range converts to an
// undefined (in practice negative) integer, which would turn an absurd
// worst case into a credit. 2^62 nano-USD is about 4.6 billion USD.
const maxNano = int64(1) << 62

// satInt64 converts a non-negative cost to int64, saturating at maxNano.
func satInt64(f float64) int64 {
	if f != f || f >= float64(maxNano) {
		return maxNano
	}
	if f < 0 {
		return 0
	}
	return int64(f)
}

// satAdd adds two non-negative token counts, saturating at maxNano.
func satAdd(a, b int64) int64 {
	if a > maxNano-b {
		return maxNano
	}
	return a + b
}

func nanoToUSD(n int64) float64 { return float64(n) / 1e9 }
func usdToNano(u float64) int64 { return int64(math.Round(u * 1e9)) }
