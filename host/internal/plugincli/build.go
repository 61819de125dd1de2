package plugincli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// project is a plugin project found in a directory.
type project struct {
	dir  string // absolute
	lang string // "go" or "as"
	name string // the plugin's name; the output is dir/name.wasm
}

func (p project) output() string { return filepath.Join(p.dir, p.name+".wasm") }

// detectProject recognises a Go plugin (Go files, with a go.mod or inside
// one) or an AssemblyScript one (package.json with an asc build script).
func detectProject(dir string) (project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return project{}, fmt.Errorf("resolving %s: %w", dir, err)
	}
	p := project{dir: abs}
	if b, err := os.ReadFile(filepath.Join(abs, "package.json")); err == nil {
		var pkg struct {
			Name    string            `json:"name"`
			Scripts map[string]string `json:"scripts"`
		}
		if err := json.Unmarshal(b, &pkg); err != nil {
			return project{}, fmt.Errorf("reading package.json: %w", err)
		}
		if pkg.Scripts["build"] == "" {
			return project{}, fmt.Errorf("%s/package.json has no build script", abs)
		}
		p.lang = "as"
		p.name = path.Base(pkg.Name) // "@scope/name" -> "name"
		if !validName.MatchString(p.name) {
			return project{}, fmt.Errorf("package.json name %q is not a valid plugin name", pkg.Name)
		}
		return p, nil
	}
	if m, _ := filepath.Glob(filepath.Join(abs, "*.go")); len(m) > 0 {
		p.lang = "go"
		p.name = filepath.Base(abs)
		if mod, err := modulePath(filepath.Join(abs, "go.mod")); err == nil {
			p.name = path.Base(mod)
		}
		return p, nil
	}
	return project{}, fmt.Errorf("%s is neither a Go plugin (*.go) nor an AssemblyScript one (package.json)", abs)
}

func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("build", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: build takes at most one DIR", errUsage)
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	p, err := detectProject(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := buildProject(ctx, p, stderr); err != nil {
		return err
	}
	code, err := os.ReadFile(p.output())
	if err != nil {
		return fmt.Errorf("reading the built module: %w", err)
	}
	sum := sha256.Sum256(code)
	fmt.Fprintf(stdout, "built %s (%d bytes) in %s\nsha256 %s\n\n", p.output(), len(code), time.Since(start).Round(time.Millisecond), hex.EncodeToString(sum[:]))
	fmt.Fprint(stdout, pluginSnippet(p.name, p.output(), sum))
	return nil
}

// pluginSnippet is the [[plugins]] block to paste into config.toml.
func pluginSnippet(name, file string, sum [32]byte) string {
	return fmt.Sprintf("# paste into config.toml, then add %q to [pipeline] input or output\n[[plugins]]\nname = %s\npath = %s\nsha256 = %q\n",
		name, strconv.Quote(name), strconv.Quote(file), hex.EncodeToString(sum[:]))
}

// buildProject runs the language's toolchain, its output going to stderr.
func buildProject(ctx context.Context, p project, stderr io.Writer) error {
	run := func(env []string, name string, args ...string) error {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("building a %s plugin needs %s on PATH: %w", p.lang, name, err)
		}
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = p.dir
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout = stderr
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("running %s %s: %w", name, strings.Join(args, " "), err)
		}
		return nil
	}
	switch p.lang {
	case "go":
		env := []string{"GOOS=wasip1", "GOARCH=wasm"}
		if _, err := os.Stat(filepath.Join(p.dir, "go.mod")); err == nil {
			// -mod=mod lets a fresh project of its own record its go.sum
			// on first build; a plugin inside another module leaves that
			// module's files alone.
			env = append(env, "GOFLAGS=-mod=mod")
		}
		// -trimpath keeps local paths out of the module; -ldflags=-s drops
		// the symbol table (2% of a Go guest, no runtime cost).
		return run(env, "go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", p.name+".wasm", ".")
	case "as":
		if _, err := os.Stat(filepath.Join(p.dir, "node_modules")); errors.Is(err, os.ErrNotExist) {
			install := "install"
			if _, err := os.Stat(filepath.Join(p.dir, "package-lock.json")); err == nil {
				install = "ci"
			}
			if err := run(nil, "npm", install, "--no-audit", "--no-fund"); err != nil {
				return err
			}
		}
		return run(nil, "npm", "run", "build")
	}
	return fmt.Errorf("unknown language %q", p.lang)
}

// sha256Hex returns the hex sha256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
