// Package plugincli implements `moat plugin`: new, build, test, bench,
// verify and eval, the plugin author's tools.
package plugincli
