// Package injclassifier is the injection-classifier built-in: a compact
// learned model (logistic regression over hashed character 4- and 5-grams
// and word unigrams and bigrams, quantized to one byte per weight and
// embedded in the plugin) that gives a text's probability of being a prompt
// injection or jailbreak, and rejects (or flags) it at a threshold.
//
// The model is trained by `make train-detector` (cmd/train-detector) on the
// public labelled sets described in shared/eval/train/README.md; see
// README.md in this directory for the data, the held-out figures and how it
// combines with injection-heuristics.
//
// System prompts and tool definitions (Context.Kind "system" and
// "tool_definition") are written by the operator, not the user, and are
// allowed without scoring.
package injclassifier

import (
	"fmt"
	"math"

	"github.com/moat-gateway/moat/plugins/injection"
	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
)

// DefaultThreshold is the probability at which a text is flagged when the
// config sets no threshold: the one make train-detector chose for the
// embedded model's fused score (the lowest at which at most 3% of each
// calibration set of benign texts is flagged, NotInject_one among them;
// since the eighth pass own_mof7_calib.json, ordinary prompts with
// attackers' words written blind, binds; see README.md).
const DefaultThreshold = 0.891

// Actions for Config.Action.
const (
	ActionReject = "reject"
	ActionFlag   = "flag"
)

// Config is the plugin's config table.
type Config struct {
	// Threshold is the probability in (0, 1) at which a text is flagged;
	// zero means DefaultThreshold.
	Threshold float64 `json:"threshold"`
	// Heuristics, when positive, fuses injection-heuristics into the
	// score: the heuristics' score times Heuristics is added to the model's
	// log-odds before the threshold is applied. Zero uses the model alone.
	Heuristics float64 `json:"heuristics"`
	// Action is "reject" (the default when empty) or "flag", which allows
	// the text and reports the score in the reason.
	Action string `json:"action"`
}

func (c Config) normalized() (Config, error) {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Threshold <= 0 || c.Threshold >= 1 {
		return c, fmt.Errorf("threshold must be a probability between 0 and 1, got %v", c.Threshold)
	}
	if c.Heuristics < 0 || math.IsNaN(c.Heuristics) || math.IsInf(c.Heuristics, 0) {
		return c, fmt.Errorf("heuristics must be a weight >= 0, got %v", c.Heuristics)
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
		return abi.RejectVerdict("injection-classifier: " + err.Error())
	}
	switch req.Context.Kind {
	case abi.KindSystem, abi.KindToolDefinition:
		return abi.AllowVerdict()
	}
	return judge(req.Text, cfg)
}

func judge(text string, cfg Config) abi.Verdict {
	raw := embedded().Raw(text)
	var h float64
	if cfg.Heuristics > 0 {
		h = injection.Score(text).Score
	}
	p := sigmoid(raw + cfg.Heuristics*h)
	if p < cfg.Threshold {
		return abi.AllowVerdict()
	}
	reason := fmt.Sprintf("injection-classifier: score %.3f >= %.3f", p, cfg.Threshold)
	if cfg.Heuristics > 0 {
		reason += fmt.Sprintf(" (model %.3f, heuristics %.1f)", sigmoid(raw), h)
	}
	if cfg.Action == ActionFlag {
		v := abi.AllowVerdict()
		v.Reason = reason
		return v
	}
	return abi.RejectVerdict(reason)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// Score returns the embedded model's probability that text is a prompt
// injection or jailbreak.
func Score(text string) float64 { return embedded().Probability(text) }
