package plugincli

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/moat-gateway/moat/sdk"
	"github.com/moat-gateway/moat/sdk/assemblyscript"
)

// The project templates, and a copy of the AssemblyScript SDK's sources
// (sdk/assemblyscript/assembly) that `new --lang as` vendors into the
// project; TestEmbeddedSDKInSync keeps the copy identical.
//
//go:embed templates
var templates embed.FS

// asVersion is the AssemblyScript compiler new projects pin, the SDK's
// (TestEmbeddedSDKInSync checks it against sdk/assemblyscript/package.json).
const asVersion = "0.28.20"

// moatModule is the module path of moat: a plugin inside a checkout uses
// its SDK through moat's own go.mod.
const moatModule = "github.com/moat-gateway/moat"

// sdkModule is the Go SDK's module path, and goSDKDir where new writes its
// embedded copy in a Go project.
const (
	sdkModule = "github.com/moat-gateway/moat/sdk"
	goSDKDir  = "moat-sdk"
)

// validName is what a plugin name may look like: it becomes a file name, a
// Go module path and an npm package name.
var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// templateData fills the templates.
type templateData struct {
	Name      string
	Module    string
	SDKDir    string // the go.mod replace target of the Go SDK
	ASVersion string
}

func cmdNew(args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("new", stderr)
	lang := flags.String("lang", "", "language: go or as (AssemblyScript)")
	dir := flags.String("dir", "", "directory to create (default ./NAME)")
	moatDir := flags.String("moat", "", "use this moat checkout's sdk/ for a Go plugin (default: a copy of the SDK embedded in moat, written to moat-sdk/)")
	pos, err := parseArgs(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: new takes one NAME", errUsage)
	}
	name := pos[0]
	if !validName.MatchString(name) {
		return fmt.Errorf("%w: plugin name %q must be lower-case letters, digits and dashes, starting with a letter", errUsage, name)
	}
	if *lang != "go" && *lang != "as" {
		return fmt.Errorf("%w: --lang must be go or as, got %q", errUsage, *lang)
	}
	target := *dir
	if target == "" {
		target = name
	}
	target, err = filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("resolving directory: %w", err)
	}
	if entries, err := os.ReadDir(target); err == nil && len(entries) > 0 {
		return fmt.Errorf("directory %s exists and is not empty", target)
	}
	data := templateData{Name: name, Module: name, ASVersion: asVersion}
	files := map[string]string{} // target-relative path -> template path
	switch *lang {
	case "go":
		files["main.go"] = "templates/go/main.go.tmpl"
		files["main_test.go"] = "templates/go/main_test.go.tmpl"
		files[".gitignore"] = "templates/go/gitignore.tmpl"
		if !insideMoat(target) {
			// The project is a module of its own, with the SDK as a
			// local module beside it: the copy embedded in this binary,
			// or a checkout's sdk/ when --moat names one.
			data.SDKDir = "./" + goSDKDir
			if *moatDir != "" {
				root, err := filepath.Abs(*moatDir)
				if err != nil {
					return fmt.Errorf("resolving --moat: %w", err)
				}
				if mod, _ := modulePath(filepath.Join(root, "sdk", "go.mod")); mod != sdkModule {
					return fmt.Errorf("--moat %s: no go.mod of module %s in its sdk/", root, sdkModule)
				}
				data.SDKDir = filepath.Join(root, "sdk")
			} else {
				err := fs.WalkDir(sdk.Source, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
						return err
					}
					files[goSDKDir+"/"+p] = goSDKPrefix + p
					return nil
				})
				if err != nil {
					return fmt.Errorf("reading the embedded Go SDK: %w", err)
				}
			}
			files["go.mod"] = "templates/go/go.mod.tmpl"
		}
	case "as":
		files["package.json"] = "templates/as/package.json.tmpl"
		files["asconfig.json"] = "templates/as/asconfig.json"
		files["assembly/index.ts"] = "templates/as/assembly/index.ts.tmpl"
		files["assembly/tsconfig.json"] = "templates/as/assembly/tsconfig.json"
		files["tests/plugin.test.mjs"] = "templates/as/tests/plugin.test.mjs.tmpl"
		files[".gitignore"] = "templates/as/gitignore.tmpl"
		files["moat-sdk/package.json"] = "templates/as-sdk/package.json"
		sdkFiles, err := assemblyscript.Source.ReadDir("assembly")
		if err != nil {
			return fmt.Errorf("reading the embedded AssemblyScript SDK: %w", err)
		}
		for _, e := range sdkFiles {
			files["moat-sdk/assembly/"+e.Name()] = sdkPrefix + "assembly/" + e.Name()
		}
	}
	for rel, tpl := range files {
		if err := writeTemplate(filepath.Join(target, filepath.FromSlash(rel)), tpl, data); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "created %s plugin %q in %s\n", map[string]string{"go": "Go", "as": "AssemblyScript"}[*lang], name, target)
	fmt.Fprintf(stdout, "next: cd %s && moat plugin build && moat plugin verify %s.wasm\n", target, name)
	return nil
}

// sdkPrefix marks a file taken from the AssemblyScript SDK's own source
// (assemblyscript.Source), goSDKPrefix one from the Go SDK's (sdk.Source),
// rather than from the templates.
const (
	sdkPrefix   = "sdk:"
	goSDKPrefix = "gosdk:"
)

// writeTemplate renders a .tmpl file (others are copied as they are).
func writeTemplate(dst, tpl string, data templateData) error {
	var b []byte
	var err error
	if rest, ok := strings.CutPrefix(tpl, sdkPrefix); ok {
		b, err = assemblyscript.Source.ReadFile(rest)
	} else if rest, ok := strings.CutPrefix(tpl, goSDKPrefix); ok {
		b, err = sdk.Source.ReadFile(rest)
	} else {
		b, err = templates.ReadFile(tpl)
	}
	if err != nil {
		return fmt.Errorf("reading template %s: %w", tpl, err)
	}
	if strings.HasSuffix(tpl, ".tmpl") {
		t, err := template.New(path.Base(tpl)).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return fmt.Errorf("parsing template %s: %w", tpl, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return fmt.Errorf("rendering template %s: %w", tpl, err)
		}
		b = buf.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// modulePath reads the module line of a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// enclosingModule returns the directory and path of the nearest go.mod at
// or above dir.
func enclosingModule(dir string) (root, module string) {
	for d := dir; ; {
		if mod, err := modulePath(filepath.Join(d, "go.mod")); err == nil {
			return d, mod
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", ""
		}
		d = parent
	}
}

// insideMoat reports whether dir lies in moat's own module, where a plugin
// needs no go.mod of its own.
func insideMoat(dir string) bool {
	_, mod := enclosingModule(dir)
	return mod == moatModule
}
