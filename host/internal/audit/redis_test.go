package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

// testRedisStore returns a checkpoint store in the test redis-server
// (MOAT_TEST_REDIS_ADDR): a failure under CI when unset, a skip otherwise.
func testRedisStore(t *testing.T, logPath string) *RedisStore {
	t.Helper()
	addr := os.Getenv("MOAT_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MOAT_TEST_REDIS_ADDR is not set (CI=true: this test must run)")
		}
		t.Skip("MOAT_TEST_REDIS_ADDR is not set; start one with `bash scripts/redis.sh start 6391 .cache/redis`")
	}
	s, err := NewRedisStore("redis://"+addr+"/0", logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Client.Del(context.Background(), s.Key)
		s.Client.Close()
	})
	return s
}

// TestRedisCheckpointCatchesReplayedFile: an attacker who cuts the tail and
// puts back an older (genuine) checkpoint file fools a check against the
// file alone, but not one against the Redis copy, and moat refuses to
// continue the trail.
func TestRedisCheckpointCatchesReplayedFile(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), "")
	rs := testRedisStore(t, cfg.Path)
	opts := Options{Checkpoints: []CheckpointStore{rs}}
	write := func(from, to int) {
		l := mustOpen(t, cfg, opts)
		for i := from; i <= to; i++ {
			if err := l.Write(context.Background(), rec(fmt.Sprintf("r%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 3)
	old, err := os.ReadFile(checkpointPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	write(4, 6)
	line, err := rs.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ParseCheckpoint(line, keyFor(t, cfg.Path))
	if err != nil || cp.Seq != 6 {
		t.Fatalf("redis checkpoint %+v %v", cp, err)
	}
	if rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{Stores: []CheckpointStore{rs}}); err != nil || rep.Checkpoint.Seq != 6 {
		t.Fatalf("intact: %+v %v", rep, err)
	}

	lines := readLines(t, cfg.Path)
	writeLines(t, cfg.Path, lines[:3])
	os.WriteFile(checkpointPath(cfg), old, 0o600)
	if rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{}); err != nil {
		t.Fatalf("the file alone should be fooled by the replay (that is why Redis is there): %+v %v", rep, err)
	}
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{Stores: []CheckpointStore{rs}})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindCutTail {
		t.Fatalf("with redis: %+v %v", rep, err)
	}
	if _, err := Open(cfg, opts); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("Open with the redis copy: %v", err)
	}
}

func TestRedisStoreUnreachableIsNoted(t *testing.T) {
	cfg, _ := trail(t, 2)
	rs, err := NewRedisStore("redis://127.0.0.1:1/0", cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Client.Close()
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{Stores: []CheckpointStore{rs}})
	if err != nil || len(rep.Notes) == 0 || rep.Checkpoint == nil {
		t.Fatalf("%+v %v", rep, err)
	}
}
