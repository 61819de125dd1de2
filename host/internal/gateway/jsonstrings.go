package gateway

import "github.com/moat-gateway/moat/host/internal/anthropic"

// mapJSONStrings rewrites every string value (not object keys) of a JSON
// document through f with the strict decoder of anthropic.MapStrings,
// keeping the order of keys and elements and the bytes of what f left
// unchanged. It is how a JSON-mode route runs text validators (html-escape,
// redactors) on the values a client will read, after the schema judged the
// model's raw JSON. The first error of f stops it.
func mapJSONStrings(doc []byte, f func(string) (string, error)) ([]byte, error) {
	var ferr error
	out, err := anthropic.MapStrings(doc, func(s string) string {
		if ferr != nil {
			return s
		}
		o, err := f(s)
		if err != nil {
			ferr = err
			return s
		}
		return o
	})
	if ferr != nil {
		return nil, ferr
	}
	return out, err
}
