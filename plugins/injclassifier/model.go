package injclassifier

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Model is a trained linear model over hashed features, quantized to one
// signed byte per bucket.
type Model struct {
	// Bias is added to every score.
	Bias float32
	// Scale converts a quantized weight to its value.
	Scale float32
	// Weights has 1<<Bits entries.
	Weights []int8
}

// modelMagic starts an encoded model; the byte after it is Bits.
const modelMagic = "moat-injclf2"

// headerLen is the magic, the bits byte, and two float32s.
const headerLen = len(modelMagic) + 1 + 8

// ErrBadModel is returned by DecodeModel for bytes that are not a model of
// this version and size.
var ErrBadModel = errors.New("bad model file")

// Encode serializes the model (see DecodeModel).
func (m *Model) Encode() []byte {
	b := make([]byte, 0, headerLen+len(m.Weights))
	b = append(b, modelMagic...)
	b = append(b, Bits)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(m.Bias))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(m.Scale))
	for _, w := range m.Weights {
		b = append(b, byte(w))
	}
	return b
}

// DecodeModel parses an encoded model: the magic, Bits as one byte, bias
// and scale as little-endian float32s, then 1<<Bits signed weight bytes.
// The weights alias b.
func DecodeModel(b []byte) (*Model, error) {
	if len(b) < headerLen || string(b[:len(modelMagic)]) != modelMagic {
		return nil, fmt.Errorf("%w: no %q header", ErrBadModel, modelMagic)
	}
	if bits := b[len(modelMagic)]; bits != Bits {
		return nil, fmt.Errorf("%w: %d feature bits, want %d", ErrBadModel, bits, Bits)
	}
	if len(b) != headerLen+1<<Bits {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadModel, len(b), headerLen+1<<Bits)
	}
	m := &Model{
		Bias:  math.Float32frombits(binary.LittleEndian.Uint32(b[len(modelMagic)+1:])),
		Scale: math.Float32frombits(binary.LittleEndian.Uint32(b[len(modelMagic)+5:])),
	}
	m.Weights = unsafeInt8s(b[headerLen:])
	return m, nil
}

//go:embed model.bin
var modelBytes []byte

// embedded is the model trained by make train-detector, decoded on first
// use (so the training tool runs even when the committed model is of an
// older format).
var embedded = sync.OnceValue(func() *Model { return mustDecode(modelBytes) })

func mustDecode(b []byte) *Model {
	m, err := DecodeModel(b)
	if err != nil {
		panic("injclassifier: embedded model: " + err.Error())
	}
	return m
}

// Embedded returns the model built into the plugin.
func Embedded() *Model { return embedded() }

// Raw returns the model's score of text before the logistic function: the
// bias plus the length-normalized sum of the weights of its features (see
// Norm).
func (m *Model) Raw(text string) float64 {
	bp := normPool.get(len(text))
	s := normalize((*bp)[:0], text)
	sum, n := sumWeights(s, m.Weights)
	normPool.put(bp, s)
	// No features: a sum of 0 over Norm(0) > 0, the bias alone.
	return float64(m.Bias) + float64(m.Scale)*float64(sum)/Norm(n)
}

// Probability returns the model's probability that text is an injection.
func (m *Model) Probability(text string) float64 {
	return 1 / (1 + math.Exp(-m.Raw(text)))
}

// sumWeights is eachFeature specialized to summing quantized weights: the
// same features, without a call per feature.
func sumWeights(s []byte, w []int8) (sum int32, n int) {
	w = w[:1<<Bits]
	for i := range s {
		h := uint32(fnvOffset)
		h = (h ^ uint32(s[i])) * fnvPrime
		if i+1 >= len(s) {
			break
		}
		h = (h ^ uint32(s[i+1])) * fnvPrime
		if i+2 >= len(s) {
			break
		}
		h = (h ^ uint32(s[i+2])) * fnvPrime
		if i+3 >= len(s) {
			break
		}
		h = (h ^ uint32(s[i+3])) * fnvPrime
		sum += int32(w[bucket(h^orderSalt[4])])
		n++
		if i+4 >= len(s) {
			continue
		}
		h = (h ^ uint32(s[i+4])) * fnvPrime
		sum += int32(w[bucket(h^orderSalt[5])])
		n++
	}
	var prev uint32
	havePrev := false
	for i := 0; i < len(s); {
		if !isWordByte(s[i]) {
			i++
			continue
		}
		h := uint32(fnvOffset)
		for ; i < len(s) && isWordByte(s[i]); i++ {
			h = (h ^ uint32(s[i])) * fnvPrime
		}
		sum += int32(w[bucket(h^saltWord)])
		n++
		if havePrev {
			sum += int32(w[bucket((prev*31+h)^saltBigram)])
			n++
		}
		prev, havePrev = h, true
	}
	return sum, n
}

// RawFeatures is Raw over already extracted features (AppendFeatures).
func (m *Model) RawFeatures(feats []uint32) float64 {
	var sum int32
	for _, b := range feats {
		sum += int32(m.Weights[b])
	}
	return float64(m.Bias) + float64(m.Scale)*float64(sum)/Norm(len(feats))
}

// MinNorm is the least feature count the length normalisation divides by:
// a text with fewer feature occurrences (about 110 characters of English and
// less) is scored as if its features were diluted among MinNorm of them, so
// one strong word cannot carry a short benign prompt ("Can you PROVIDE an
// overview of...") as far as the plain square root would. Seventh pass: 250
// measured best of 0 / 150 / 250 / 400 by the rule in README.md.
const MinNorm = 250

// Norm is the length normalisation of a text with n feature occurrences:
// the square root of n, or of MinNorm for shorter texts.
func Norm(n int) float64 { return math.Sqrt(float64(max(n, MinNorm))) }
