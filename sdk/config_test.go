package sdk_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/moat-gateway/moat/sdk"
)

func TestConfigDecodesOncePerConfig(t *testing.T) {
	type cfg struct {
		Deny []string `json:"deny"`
	}
	prepared := 0
	c := sdk.Config[cfg]{Prepare: func(v *cfg) error {
		prepared++
		if len(v.Deny) > 0 && v.Deny[0] == "bad" {
			return errors.New("bad phrase")
		}
		return nil
	}}
	tests := []struct {
		name         string
		raw          string
		wantDeny     int
		wantErr      bool
		wantPrepared int
	}{
		{"absent", "", 0, false, 1},
		{"absent again", "", 0, false, 1},
		{"set", `{"deny":["a","b"]}`, 2, false, 2},
		{"same bytes", `{"deny":["a","b"]}`, 2, false, 2},
		{"changed", `{"deny":["a"]}`, 1, false, 3},
		{"not json", `{`, 0, true, 3},
		{"same bad bytes fail again without a decode", `{`, 0, true, 3},
		{"prepare fails", `{"deny":["bad"]}`, 1, true, 4},
		{"null", `null`, 0, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.Get(sdk.Request{Config: []byte(tt.raw)})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err == nil && len(v.Deny) != tt.wantDeny {
				t.Errorf("deny %v, want %d entries", v.Deny, tt.wantDeny)
			}
			if prepared != tt.wantPrepared {
				t.Errorf("prepared %d times, want %d", prepared, tt.wantPrepared)
			}
		})
	}
}

func ExampleConfig() {
	type settings struct {
		Max int `json:"max"`
	}
	var config = sdk.Config[settings]{Prepare: func(s *settings) error {
		if s.Max == 0 {
			s.Max = 100 // the default
		}
		return nil
	}}
	s, err := config.Get(sdk.Request{Config: []byte(`{"max":5}`)})
	fmt.Println(s.Max, err)
	s, err = config.Get(sdk.Request{})
	fmt.Println(s.Max, err)
	// Output:
	// 5 <nil>
	// 100 <nil>
}
