package load

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRegisterFlagsEnvAndFlags(t *testing.T) {
	env := map[string]string{
		EnvRate: "5", EnvDuration: "1m", EnvCount: "100", EnvConcurrency: "7",
		EnvMix: "valid=1,lookup=1", EnvMode: "closed", EnvWorkers: "3", EnvTimeout: "2s", EnvSeed: "9",
	}
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	if err := cfg.RegisterFlags(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"-rate", "8", "-mode", "open"}); err != nil {
		t.Fatal(err)
	}
	want := Config{Mode: ModeOpen, Rate: 8, Duration: time.Minute, Count: 100, Concurrency: 7, Workers: 3,
		Timeout: 2 * time.Second, Seed: 9}
	if cfg.Mode != want.Mode || cfg.Rate != want.Rate || cfg.Duration != want.Duration || cfg.Count != want.Count ||
		cfg.Concurrency != want.Concurrency || cfg.Workers != want.Workers || cfg.Timeout != want.Timeout || cfg.Seed != want.Seed {
		t.Fatalf("got %+v", cfg)
	}
	if cfg.Mix.String() != "valid_order=1,lookup=1" {
		t.Fatalf("mix %s", cfg.Mix)
	}

	// Help names every environment variable.
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, v := range []string{EnvRate, EnvDuration, EnvCount, EnvConcurrency, EnvMix, EnvMode, EnvWorkers} {
		if !strings.Contains(help.String(), "$"+v) {
			t.Errorf("help lacks $%s", v)
		}
	}
}

func TestRegisterFlagsDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	if err := cfg.RegisterFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeOpen || cfg.Rate != 20 || cfg.Concurrency != 64 || cfg.Mix.String() != DefaultMix().String() {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestRegisterFlagsBadEnvAndFlags(t *testing.T) {
	for k, v := range map[string]string{EnvRate: "fast", EnvMix: "valid", EnvDuration: "10", EnvCount: "x"} {
		var cfg Config
		fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
		if err := cfg.RegisterFlags(fs, func(name string) string {
			if name == k {
				return v
			}
			return ""
		}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: want an error naming it, got %v", k, v, err)
		}
	}
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_ = cfg.RegisterFlags(fs, nil)
	for _, args := range [][]string{{"-mode", "sideways"}, {"-mix", "nope=1"}} {
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v: want error", args)
		}
	}
}
