// Command composevalidate loads compose files the way Docker Compose v2 does, offline,
// with the compose-spec loader Compose itself is built on (github.com/compose-spec/compose-go):
// interpolation (including ${VAR:?message} guards), the compose-spec JSON schema, merging
// of overlays, and the cross-service checks (depends_on targets, named volumes, ...).
// Debian's docker-compose 1.29 validates the same files against its older schema; this
// one covers what current `docker compose` accepts.
//
//	composevalidate [-env-file FILE] FILE...
//
// Prints one line per service of the merged project; exits 1 when the files are invalid.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "file for ${...} interpolation (default: .env beside the first compose file)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: composevalidate [-env-file FILE] FILE...")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	files := flag.Args()
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv,
		cli.WithName("openplane"),
	}
	if *envFile != "" {
		opts = append(opts, cli.WithEnvFiles(*envFile))
	}
	opts = append(opts, cli.WithDotEnv)
	options, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		fail(files, err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(files, err)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	for _, name := range names {
		s := project.Services[name]
		deps := make([]string, 0, len(s.DependsOn))
		for dep, d := range s.DependsOn {
			deps = append(deps, dep+":"+d.Condition)
		}
		sort.Strings(deps)
		fmt.Printf("ok   %-18s image=%s depends_on=[%s]\n", name, s.Image, strings.Join(deps, " "))
	}
	fmt.Printf("composevalidate: %s: %d services, %d volumes\n", strings.Join(files, " + "), len(project.Services), len(project.Volumes))
}

func fail(files []string, err error) {
	fmt.Fprintf(os.Stderr, "composevalidate: %s: %v\n", strings.Join(files, " + "), err)
	os.Exit(1)
}
