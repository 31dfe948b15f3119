package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCommand writes reference documentation for every command. It is
// hidden: `make docs` is the way people reach it.
func newDocsCommand() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:    "docs",
		Short:  "Write markdown or man pages for every command into a directory",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return failed(fmt.Errorf("create docs directory: %w", err))
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			switch format {
			case "markdown":
				return doc.GenMarkdownTree(root, dir)
			case "man":
				return doc.GenManTree(root, &doc.GenManHeader{Title: "SWITCHBOARD", Section: "1"}, dir)
			default:
				return usageErrorf("--format must be markdown or man, not %q", format)
			}
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "docs/cli", "directory to write into")
	cmd.Flags().StringVar(&format, "format", "markdown", "markdown or man")
	return cmd
}
