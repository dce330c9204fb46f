package deploy

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfileBuild is what the Dockerfile's build stage does, read from the file itself.
type dockerfileBuild struct {
	env        map[string]string // ENV of the build stage
	defaultCmd string            // ARG CMD=...
	args       []string          // the `go build` command line, ${CMD} unexpanded
}

// parseDockerfile reads ENV, ARG CMD and the `go build` line of the Dockerfile's first
// (build) stage, joining continued lines.
func parseDockerfile(t *testing.T) dockerfileBuild {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), dockerfileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	b := dockerfileBuild{env: map[string]string{}}
	stages := 0
	for _, l := range lines {
		fields := strings.Fields(l)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			stages++
		case "ENV":
			if stages == 1 {
				for _, kv := range fields[1:] {
					k, v, _ := strings.Cut(kv, "=")
					b.env[k] = v
				}
			}
		case "ARG":
			if stages == 1 && strings.HasPrefix(fields[1], "CMD=") {
				b.defaultCmd = strings.TrimPrefix(fields[1], "CMD=")
			}
		case "RUN":
			if stages == 1 {
				if i := strings.Index(l, "go build "); i >= 0 {
					b.args = shellWords(t, l[i:])
				}
			}
		}
	}
	if stages < 2 {
		t.Errorf("Dockerfile has %d stages, want a build stage and a final stage", stages)
	}
	if b.args == nil {
		t.Fatal("no `go build` line in the Dockerfile's build stage")
	}
	return b
}

// shellWords splits a command line the way /bin/sh would for the simple quoting the
// Dockerfile uses (double quotes, no escapes inside).
func shellWords(t *testing.T, s string) []string {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

var finalStage = regexp.MustCompile(`(?m)^FROM\s+(\S+)\s*$`)

func TestDockerfileShape(t *testing.T) {
	b := parseDockerfile(t)
	for k, want := range map[string]string{"CGO_ENABLED": "0", "GOTOOLCHAIN": "local"} {
		if b.env[k] != want {
			t.Errorf("build stage ENV %s=%q, want %q", k, b.env[k], want)
		}
	}
	line := strings.Join(b.args, " ")
	for _, want := range []string{"-trimpath", "-ldflags=-s -w", "./${CMD}"} {
		if !strings.Contains(line, want) {
			t.Errorf("go build line %q lacks %q", line, want)
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot(t), b.defaultCmd)); err != nil {
		t.Errorf("ARG CMD default: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), dockerfileName))
	if err != nil {
		t.Fatal(err)
	}
	froms := finalStage.FindAllStringSubmatch(string(raw), -1)
	if len(froms) == 0 {
		t.Fatal("final stage FROM not found")
	}
	final := froms[len(froms)-1][1]
	if !strings.Contains(final, ":") || strings.HasSuffix(final, ":latest") {
		t.Errorf("final image %q not pinned", final)
	}
	if !regexp.MustCompile(`(?m)^USER\s+(nonroot|[1-9][0-9]*)`).Match(raw) {
		t.Error("final stage does not switch to a non-root USER")
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".cache", "bin"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `/?$`).Match(ignore) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// TestImagesBuild runs the Dockerfile's `go build` line, with its flags and environment,
// for the CMD of every image compose.yaml builds, in a copy of the build context (the repo
// root minus what .dockerignore excludes), so the Go workspace is used as in the image and
// a source file the context leaves out breaks the test as it would break the image.
func TestImagesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	b := parseDockerfile(t)
	p := loadCompose(t)
	// The build sees only the context: a copy of the repo filtered by .dockerignore.
	root := dockerContext(t)
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	for name := range goServices {
		svc := p.Services[name]
		if svc.Build == nil || svc.Build.Args["CMD"] == nil {
			t.Errorf("%s: no build arg CMD", name)
			continue
		}
		cmd := *svc.Build.Args["CMD"]
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "app")
			var args []string
			for i := 1; i < len(b.args); i++ { // b.args[0] == "go"
				a := strings.ReplaceAll(b.args[i], "${CMD}", cmd)
				if b.args[i-1] == "-o" {
					a = out
				}
				args = append(args, a)
			}
			c := exec.Command(goBin, args...)
			c.Dir = root
			// The image finds go.work in the context, whatever this process was told.
			c.Env = append(os.Environ(), "GOWORK=auto")
			for k, v := range b.env {
				if k == "GOFLAGS" {
					// The image's build context has no .git (.dockerignore), so
					// nothing is VCS-stamped there; do the same here.
					v += " -buildvcs=false"
				}
				c.Env = append(c.Env, k+"="+v)
			}
			if msg, err := c.CombinedOutput(); err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s -> %.1f MB", name, cmd, float64(fi.Size())/1e6)
		})
	}
}

// TestDockerfileCopiesEveryWorkspaceModule: the module-files layer must copy the go.mod of
// every module go.work uses, or `go mod download` fails in the image.
func TestDockerfileCopiesEveryWorkspaceModule(t *testing.T) {
	root := repoRoot(t)
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, dockerfileName))
	if err != nil {
		t.Fatal(err)
	}
	mods := workspaceModules(string(work))
	if len(mods) == 0 {
		t.Fatal("no use directives in go.work")
	}
	for _, m := range mods {
		want := regexp.MustCompile(`(?m)^COPY\s+` + regexp.QuoteMeta(m) + `/go\.mod\s`)
		if !want.Match(df) {
			t.Errorf("Dockerfile does not COPY %s/go.mod before `go mod download`", m)
		}
	}
}

// workspaceModules returns the directories of go.work's use directives ("services", ...).
func workspaceModules(work string) []string {
	var out []string
	inUse := false
	for _, line := range strings.Split(work, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "use ("):
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "":
			out = append(out, strings.TrimPrefix(line, "./"))
		case strings.HasPrefix(line, "use "):
			out = append(out, strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "use ")), "./"))
		}
	}
	return out
}

// dockerContext copies the repo root into a temporary directory, leaving out what
// .dockerignore excludes, and returns the copy.
func dockerContext(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var ignore []*regexp.Regexp
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: not supported by this test", line)
		}
		ignore = append(ignore, dockerignorePattern(strings.Trim(line, "/")))
	}
	dst := t.TempDir()
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, re := range ignore {
			if re.MatchString(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		return copyFile(path, target)
	})
	if err != nil {
		t.Fatalf("copying the build context: %v", err)
	}
	t.Logf("build context: %d files", files)
	return dst
}

// dockerignorePattern turns a .dockerignore pattern (anchored at the context root; *, ?
// and **) into a regexp matching a slash-separated relative path.
func dockerignorePattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
