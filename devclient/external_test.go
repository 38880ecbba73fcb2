package devclient_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// devclient is for code outside this module (firmware teams), which cannot
// import anything under internal/. These tests keep internal types out of its
// API: one reads the declarations, the other builds a module of its own that
// uses the whole API, the README's sample and examples/devclient.

// Every exported declaration of the package (types, exported fields,
// signatures, variables, constants) refers to no package under internal/.
// This also refuses an alias to an internal type, even one whose fields an
// outsider could use: devclient's types are its own, documented where a
// firmware team reads them.
func TestAPIRefersToNoInternalPackage(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		internal := map[string]string{} // local name -> import path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains("/"+path+"/", "/internal/") {
				continue
			}
			name := filepath.Base(path)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			internal[name] = path
		}
		if len(internal) == 0 {
			continue
		}
		check := func(what string, n ast.Node) {
			if n == nil {
				return
			}
			ast.Inspect(n, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && internal[x.Name] != "" {
						t.Errorf("%s: %s uses %s.%s from %s, which code outside the module cannot name",
							fset.Position(sel.Pos()), what, x.Name, sel.Sel.Name, internal[x.Name])
					}
				}
				return true
			})
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv != nil && !exportedReceiver(d.Recv.List[0].Type) {
					continue
				}
				check(d.Name.Name, d.Type)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							checkType(s.Name.Name, s.Type, check)
						}
					case *ast.ValueSpec:
						for _, name := range s.Names {
							if name.IsExported() {
								// The values too: an untyped variable takes
								// the type of its value.
								check(name.Name, s.Type)
								for _, v := range s.Values {
									check(name.Name, v)
								}
							}
						}
					}
				}
			}
		}
	}
}

// checkType checks what an outsider sees of a type: all of it but the
// unexported fields of a struct and the unexported methods of an interface.
func checkType(name string, typ ast.Expr, check func(string, ast.Node)) {
	var fields *ast.FieldList
	switch t := typ.(type) {
	case *ast.StructType:
		fields = t.Fields
	case *ast.InterfaceType:
		fields = t.Methods
	default:
		check(name, typ)
		return
	}
	for _, f := range fields.List {
		exported := len(f.Names) == 0 // embedded
		for _, n := range f.Names {
			exported = exported || n.IsExported()
		}
		if exported {
			check(name, f.Type)
		}
	}
}

func exportedReceiver(typ ast.Expr) bool {
	for {
		switch t := typ.(type) {
		case *ast.StarExpr:
			typ = t.X
		case *ast.IndexExpr: // generic receiver
			typ = t.X
		case *ast.IndexListExpr:
			typ = t.X
		case *ast.Ident:
			return t.IsExported()
		default:
			return false
		}
	}
}

// outsider uses every exported identifier of devclient, as a program in
// another module would. Keep it complete when the API grows.
const outsider = `package outsider

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/gorilla/websocket"
)

func Use(ctx context.Context) (int, error) {
	var refused []error
	c := devclient.New(devclient.Config{
		URL:   "ws://gateway/ws/device",
		Token: "token",
		OnAck: func(id string, latency time.Duration) {},
		OnError: func(e devclient.FrameError) {
			var code, id, msg string = e.Code, e.ID, e.Message
			_, _, _ = code, id, msg
			refused = append(refused, e)
		},
		OnCommand: func(cmd devclient.Command) devclient.CommandResult {
			var id, name string = cmd.ID, cmd.Name
			var args json.RawMessage = cmd.Args
			_, _ = id, name
			return devclient.CommandResult{OK: true, Data: args, Error: ""}
		},
		OnState:       func(connected bool, err error) {},
		MinBackoff:    time.Second,
		MaxBackoff:    time.Minute,
		RetryAfter:    time.Second,
		MaxFrameBytes: 64 << 10,
		Dialer:        websocket.DefaultDialer,
	})
	codes := []string{devclient.CodeInvalidJSON, devclient.CodeInvalidFrame, devclient.CodeTooLarge,
		devclient.CodeRateLimited, devclient.CodeUnavailable}
	_ = codes
	var id string
	var err error
	id, err = c.Send(devclient.Frame{Type: devclient.TypeLocation, ID: "m-1", TS: time.Now().UnixMilli(),
		Data: devclient.Location{Lat: 1, Lng: 2, Accuracy: new(1.0), Speed: new(2.0), Heading: new(3.0),
			Altitude: new(4.0), CRS: "gcj02"}})
	_ = id
	if errors.Is(err, devclient.ErrFrameTooLarge) {
		return 0, err
	}
	_, _ = c.Send(devclient.Frame{Type: devclient.TypeLog,
		Data: devclient.Log{Level: "info", Message: "hello", Fields: map[string]any{"k": 1}}})
	if err := c.Run(ctx); errors.Is(err, devclient.ErrUnauthorized) {
		return c.Pending(), err
	}
	return c.Pending(), nil
}
`

// A module outside devtrack (replace => this repository) that holds
// outsider, the README's devclient sample and a copy of examples/devclient
// passes go vet, which type-checks all three; it uses only the module cache.
func TestUsableFromAnotherModule(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go is not on PATH: cannot build a module outside devtrack that imports devclient")
		}
		t.Skip("go is not on PATH: cannot build a module outside devtrack that imports devclient")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mod)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goVersion = v
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"go.mod": fmt.Appendf(nil, "module example.com/firmware\n\ngo %s\n\nrequire github.com/devtrack/devtrack v0.0.0\n\nreplace github.com/devtrack/devtrack => %s\n",
			goVersion, root),
		"go.sum":               sum, // the hashes of devtrack's own dependencies, all the outsider needs
		"outsider/outsider.go": []byte(outsider),
		"readme/main.go":       []byte(readmeSample(t, filepath.Join(root, "README.md"))),
	}
	examples, err := filepath.Glob(filepath.Join(root, "examples", "devclient", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range examples {
		if strings.HasSuffix(p, "_test.go") {
			continue // a test may use the module's internal helpers
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files["example/"+filepath.Base(p)] = b
	}
	if _, ok := files["example/main.go"]; !ok {
		t.Fatal("examples/devclient/main.go is missing")
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, "vet", "./...")
	cmd.Dir = dir
	// -mod=mod fills in the requirements the outsider adds (gorilla/websocket
	// directly); GOPROXY=off keeps it to the module cache, where devtrack's
	// dependencies already are.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet ./... in a module outside devtrack that uses devclient: %v\n%s", err, out)
	}
}

// readmeSample is the first go code block of the README's devclient section.
func readmeSample(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const section = "## For firmware teams: devclient"
	var code bytes.Buffer
	in, inCode := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in:
			in = line == section
		case inCode && line == "```":
			return code.String()
		case inCode:
			code.WriteString(line + "\n")
		case line == "```go":
			inCode = true
		case strings.HasPrefix(line, "## "):
			t.Fatalf("README.md: no go code block in %q", section)
		}
	}
	t.Fatalf("README.md: no section %q with a go code block", section)
	return ""
}
