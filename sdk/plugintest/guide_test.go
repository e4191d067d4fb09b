package plugintest_test

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const guidePath = "../../docs/writing-a-detector.md"

// guideFiles returns the Go blocks of a Markdown file whose info string
// names a file ("```go main.go"), concatenated per file in order.
func guideFiles(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string]string{}
	var name string
	var inBlock bool
	var block strings.Builder
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		switch {
		case !inBlock && strings.HasPrefix(trimmed, "```"):
			inBlock = true
			fields := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			name = ""
			if len(fields) == 2 && fields[0] == "go" {
				name = fields[1]
			}
			block.Reset()
		case inBlock && trimmed == "```":
			inBlock = false
			if name != "" {
				files[name] += block.String() + "\n"
			}
		case inBlock:
			block.WriteString(text + "\n")
		}
	}
	if inBlock {
		return nil, fmt.Errorf("%s: a code block is not closed", path)
	}
	return files, sc.Err()
}

// The guide's code, extracted from docs/writing-a-detector.md, is a
// complete plugin built only on the SDK, and its own test (which runs
// plugintest) passes.
func TestGuide(t *testing.T) {
	t.Parallel()
	files, err := guideFiles(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"main.go", "main_test.go"} {
		if files[want] == "" {
			t.Fatalf("%s has no ```go %s block", guidePath, want)
		}
	}
	fset := token.NewFileSet()
	for name, src := range files {
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("the guide's %s does not parse: %v", name, err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(p, "/")[0], ".")
			allowed := p == "github.com/netguardian/netguardian/sdk" || (name == "main_test.go" && p == "github.com/netguardian/netguardian/sdk/plugintest")
			if !std && !allowed {
				t.Errorf("the guide's %s imports %s; a third-party plugin imports only the sdk (and plugintest in tests)", name, p)
			}
		}
	}

	// The directory is inside this module (under testdata, so ./... skips
	// it) and has no go.mod: it builds against this checkout's sdk.
	dir, err := os.MkdirTemp("testdata", "tmp-guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-v", "./"+filepath.ToSlash(dir))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the guide's test fails: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestPlugin", `fixture "a tunnel and a browser": 2 rows, 1 alerts`, `bad config 1 refused: severity = "urgent"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the guide's test output lacks %q:\n%s", want, out)
		}
	}
}
