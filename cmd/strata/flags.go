package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// command is one subcommand: its flags, each bound to an environment
// variable (--catalog-url ⇔ STRATA_CATALOG_URL), and its help text.
type command struct {
	fs      *flag.FlagSet
	name    string
	summary string // one line, for `strata --help`
	about   string // paragraphs, for `strata NAME --help`
	// env, if set, names the only flags bound to the environment
	// (restFromCommandLine).
	env map[string]bool
}

// restFromCommandLine leaves the flags defined after it unbound to the
// environment: the arguments of a one-off command (strata project --id,
// bench's --duration) are not deployment settings, and generic names such
// as STRATA_ID or STRATA_RETENTION in the environment changed what
// `strata project` did (QA: a plain listing created project "oops").
func (c *command) restFromCommandLine() {
	c.env = map[string]bool{}
	c.fs.VisitAll(func(f *flag.Flag) { c.env[f.Name] = true })
}

// fromEnv says whether a flag may be set by its environment variable.
func (c *command) fromEnv(name string) bool { return c.env == nil || c.env[name] }

func newCommand(name, summary, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and usage are printed by run
	return &command{fs: fs, name: name, summary: summary, about: about}
}

// envName is the environment variable bound to a flag.
func envName(flagName string) string {
	return "STRATA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// errHelp is returned by parse when the user asked for help, which was
// printed; the command then exits successfully.
var errHelp = errors.New("help requested")

// usageError is a mistake on the command line: it exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parse reads flags from args, then fills every flag not given on the
// command line from its environment variable. Flags win over the
// environment, the environment over defaults.
func (c *command) parse(args []string, stdout io.Writer) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout)
			return errHelp
		}
		return usageError{fmt.Errorf("%s: %s (see 'strata %s --help')", c.name, c.explain(err, nil), c.name)}
	}
	if c.fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q (see 'strata %s --help')", c.name, c.fs.Arg(0), c.name)}
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	c.fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || !c.fromEnv(f.Name) {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %s", envName(f.Name), v, c.explain(err, f)))
			}
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return c.checkDurations()
}

// flagInError finds the flag the flag package names in its errors.
var flagInError = regexp.MustCompile(`(flag|for|argument:) -([a-z0-9-]+)`)

// explain rewrites the flag package's errors as strata writes flags
// (--name, not -name), and says what a value of the flag (f, or the one
// the error names) looks like where the package says only "parse error"
// (QA).
func (c *command) explain(err error, f *flag.Flag) string {
	msg := err.Error()
	if m := flagInError.FindStringSubmatch(msg); m != nil && f == nil {
		f = c.fs.Lookup(m[2])
	}
	msg = flagInError.ReplaceAllString(msg, "$1 --$2")
	msg = strings.Replace(msg, "provided but not defined: -", "provided but not defined: --", 1)
	if !strings.HasSuffix(msg, "parse error") || f == nil {
		return msg
	}
	want := ""
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		want = "want true or false"
	} else if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			want = "want a whole number"
		case float64:
			want = "want a number"
		}
	}
	if want == "" {
		return msg
	}
	return strings.TrimSuffix(msg, "parse error") + want
}

// durationValue is a duration flag whose error says what a duration looks
// like: the flag package's own says only "parse error".
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, like 500ms, 30s, 5m or 1h30m", s)
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Get() any       { return time.Duration(*d) }

// durationVar defines a duration flag (see durationValue).
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

// duration defines a duration flag and returns where its value is kept.
func duration(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	durationVar(fs, p, name, value, usage)
	return p
}

// zeroDurationOK names the duration flags for which zero means something
// (none); every other duration must be positive — a zero or negative one
// used to fall back to a default without a word.
var zeroDurationOK = map[string]bool{"compact-min-age": true, "outage": true}

func (c *command) checkDurations() error {
	var err error
	c.fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		d, ok := g.Get().(time.Duration)
		switch {
		case !ok:
		case d < 0:
			err = settingError{f.Name, fmt.Errorf("%v is negative", d)}
		case d == 0 && !zeroDurationOK[f.Name]:
			err = settingError{f.Name, errors.New("must be longer than 0")}
		}
	})
	return err
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: strata %s [flags]\n\n%s\n", c.name, strings.TrimSpace(c.about))
	n := 0
	c.fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags (those with an environment variable shown may be set by it):\n")
	c.fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n", f.Name, typ)
		fmt.Fprintf(w, "        %s\n", help)
		var notes []string
		if c.fromEnv(f.Name) {
			notes = append(notes, "env "+envName(f.Name))
		}
		if f.DefValue != "" {
			notes = append(notes, "default "+f.DefValue)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "        %s\n", strings.Join(notes, ", "))
		}
	})
}

// settingError names the setting a bad value came from, so the one line a
// user sees says what to fix.
type settingError struct {
	flag string
	err  error
}

func (e settingError) Error() string {
	return fmt.Sprintf("%s (--%s): %v", envName(e.flag), e.flag, e.err)
}
func (e settingError) Unwrap() error { return e.err }
