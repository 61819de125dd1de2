package anthropic

import (
	"encoding/base64"
	"image"
	"strings"

	// Decoders for the image formats the API takes whose size the standard
	// library can read (WebP falls back to the flat estimate).
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
)

// imageHeaderBytes is how much base64 is decoded to read an image's size;
// PNG and GIF keep it in the first bytes, JPEG within the first segments.
const imageHeaderBytes = 64 << 10

// imagePixelTokens estimates an image from its pixel size, as the API
// documents it: width × height / 750 tokens, for an image the API has
// scaled to at most about 1.15 megapixels.
func imagePixelTokens(data *node) (int64, bool) {
	if data == nil || data.kind != '"' {
		return 0, false
	}
	s := data.str
	if len(s) > imageHeaderBytes {
		s = s[:imageHeaderBytes]
	}
	s = s[:len(s)/4*4]
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(s))
	cfg, _, err := image.DecodeConfig(dec)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, false
	}
	t := int64(cfg.Width) * int64(cfg.Height) / 750
	return min(max(t, 1), imageTokens), true
}
