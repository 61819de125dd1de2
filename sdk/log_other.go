//go:build !wasip1

package sdk

import (
	"context"
	"log/slog"
)

// Log writes a message to the plugin's log at level (LevelDebug..LevelError).
// In the sandbox it calls moat.log; natively it goes to slog.Default().
func Log(level int32, msg string) {
	l := slog.LevelError
	switch {
	case level <= LevelDebug:
		l = slog.LevelDebug
	case level == LevelInfo:
		l = slog.LevelInfo
	case level == LevelWarn:
		l = slog.LevelWarn
	}
	slog.Default().Log(context.Background(), l, msg, "source", "plugin")
}
