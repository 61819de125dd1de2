package streamguard

import (
	"encoding/json"
	"errors"
	"html"
	"reflect"
	"strings"
	"testing"
)

func TestMapJSONStrings(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"object", `{"category": "a<b", "urgent": true}`, `{"category":"a&lt;b","urgent":true}`},
		{"keys untouched", `{"<k>": "<v>"}`, `{"<k>":"&lt;v&gt;"}`},
		{"nested", `{"a":[1,"x&y",{"b":null,"c":["<"]}],"d":{}}`, `{"a":[1,"x&amp;y",{"b":null,"c":["&lt;"]}],"d":{}}`},
		{"top-level string", `"<"`, `"&lt;"`},
		{"numbers kept", `[1.50,-2e3,0]`, `[1.50,-2e3,0]`},
		{"empty containers", `[[],{},""]`, `[[],{},""]`},
		{"order kept", `{"z":"1","a":"2","m":"3"}`, `{"z":"1","a":"2","m":"3"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mapJSONStrings([]byte(tc.in), func(s string) (string, error) { return html.EscapeString(s), nil })
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"a":`, `[1,2`, `{"a":1}{`, `}`, ``} {
		if _, err := mapJSONStrings([]byte(bad), func(s string) (string, error) { return s, nil }); err == nil && bad != `` {
			t.Errorf("%q: no error", bad)
		}
	}
	boom := errors.New("boom")
	if _, err := mapJSONStrings([]byte(`["x"]`), func(string) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Errorf("f's error lost: %v", err)
	}
}

// FuzzMapJSONStrings: for any valid JSON document, the identity mapping
// gives a document equal to it, and an upper-casing mapping changes only
// string values.
func FuzzMapJSONStrings(f *testing.F) {
	for _, s := range []string{`{"a":"b","c":[1,true,null,"d"]}`, `"x"`, `[]`, `{"k":{"k":{"k":"v"}}}`, `1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var want any
		got, err := mapJSONStrings([]byte(doc), func(s string) (string, error) { return s, nil })
		if err != nil {
			// The strict decoder refuses what encoding/json is lenient
			// about (duplicate names, invalid UTF-8); it must never
			// accept what encoding/json refuses.
			return
		}
		if json.Unmarshal([]byte(doc), &want) != nil {
			t.Fatalf("accepted invalid JSON %q", doc)
		}
		var back any
		if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("%q -> %s (%v)", doc, got, err)
		}
		up, err := mapJSONStrings([]byte(doc), func(s string) (string, error) { return strings.ToUpper(s), nil })
		if err != nil || !json.Valid(up) {
			t.Fatalf("upper %q -> %s (%v)", doc, up, err)
		}
	})
}
