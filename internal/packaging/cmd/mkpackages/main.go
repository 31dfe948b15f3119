// Command mkpackages builds the switchboard .deb and .rpm packages; `make
// package` runs it after building the binary and writing the example agent
// configuration. It is a build tool, not part of the product.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/switchboard-dev/switchboard/internal/packaging"
)

// docs is a repeatable --doc flag.
type docs []string

func (d *docs) String() string     { return strings.Join(*d, ",") }
func (d *docs) Set(v string) error { *d = append(*d, v); return nil }

func main() {
	var spec packaging.Spec
	var out string
	var docFiles docs
	flag.StringVar(&spec.Binary, "binary", "", "switchboard binary built for the target (linux/ARCH)")
	flag.StringVar(&spec.ConfigExample, "config-example", "", "file with the output of 'switchboard agent config example'")
	flag.Var(&docFiles, "doc", "file to ship under "+packaging.DocDir+" (repeatable)")
	flag.StringVar(&spec.Version, "version", "", "version, as git describe prints it")
	flag.StringVar(&spec.Arch, "arch", "", "Go architecture of the binary (amd64, arm64)")
	flag.StringVar(&spec.Maintainer, "maintainer", "", `package maintainer, "Name <email>"`)
	flag.StringVar(&spec.Vendor, "vendor", "", "vendor name")
	flag.StringVar(&spec.Homepage, "homepage", "", "product home page")
	flag.StringVar(&spec.License, "license", "", "licence name for the package metadata")
	flag.StringVar(&out, "out", "dist", "directory the packages are written to")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkpackages --binary FILE --config-example FILE --version V --arch ARCH [--doc FILE]... [--out DIR]\n\nBuilds %s packages with nfpm.\n\n", strings.Join(packaging.Formats, " and "))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mkpackages: unexpected argument %q (everything is a flag)\n", flag.Arg(0))
		os.Exit(2)
	}
	spec.Docs = docFiles
	arts, err := packaging.Build(spec, out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkpackages: %v\n", err)
		os.Exit(1)
	}
	for _, a := range arts {
		fmt.Printf("%s\t%d bytes\n", a.Path, a.Size)
	}
}
