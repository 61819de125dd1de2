package limit

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// TestMain silences go-redis' own dial-failure log lines (the tests kill
// redis on purpose) and checks that Close leaves no goroutine behind.
// ulule's memory store runs a cleaner that only stops when the store is
// garbage collected.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/ulule/limiter/v3/drivers/store/memory.(*cleaner).Run"),
	)
}
