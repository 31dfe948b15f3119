package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/internal/buildinfo"
)

func newVersionCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Example: `  switchboard version
  switchboard version --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := buildinfo.Get()
			return app.render(info, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "switchboard %s\ncommit:   %s\ngo:       %s\nplatform: %s\n",
					info.Version, info.Commit, info.GoVersion, info.Platform)
				return err
			})
		},
	}
}
