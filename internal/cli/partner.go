package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/partnercode"
)

func newPartnerCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "partner",
		Short: "Link this install to the partner who brought it",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPartnerSetCommand(app))
	return cmd
}

type partnerSetResult struct {
	localapi.LinkAnswer
	// Request is the link request as the agent reports it after --wait.
	Request *localapi.LinkRequestInfo `json:"request,omitempty"`
}

func newPartnerSetCommand(app *App) *cobra.Command {
	var socket, cfgPath string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "set CODE",
		Short: "Link this still-unlinked install to a partner code",
		Long: `Link this install to the partner (or referral) whose code is CODE. The code is
checked here first (typos are caught by its check character; case, spaces,
dashes, O/0 and I/L/1 do not matter), then the local agent queues a link
request in its outbox and the registry answers with a re-issued licence that
carries the code. The answer shows in 'switchboard status'; --wait waits for it.

A link is permanent: an install already linked to another partner is refused
(409); only vendor staff can move it. Exit 1 for an invalid code or a refused
link, 3 when the agent is not running.`,
		Example: `  switchboard partner set K7QM-4XJD-R
  switchboard partner set k7qm4xjdr --wait 30s --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket != "" && cfgPath != "" {
				return usageErrorf("give --socket or --config, not both")
			}
			code, err := partnercode.Parse(args[0])
			if err != nil {
				return failed(err)
			}
			path, err := socketFrom(socket, cfgPath)
			if err != nil {
				return err
			}
			c := localapi.NewClient(path)
			ans, err := c.Link(cmd.Context(), code.String())
			if err != nil {
				return clientErr(err)
			}
			res := partnerSetResult{LinkAnswer: ans}
			if wait > 0 && ans.Seq != 0 {
				req, err := waitForLink(cmd.Context(), c, ans.Seq, wait)
				if err != nil {
					return clientErr(err)
				}
				res.Request = req
			}
			if err := app.render(res, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, ans.Message)
				if res.Request != nil {
					fmt.Fprintf(w, "registry: %s %s\n", res.Request.State, res.Request.Message)
				}
				return err
			}); err != nil {
				return err
			}
			if res.Request != nil && res.Request.State == "refused" {
				return failed(fmt.Errorf("link to %s refused: %s", code, res.Request.Message))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's unix socket")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the agent's configuration file (to find its socket)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for the registry's answer (0: do not wait)")
	return cmd
}

func clientErr(err error) error {
	if errors.Is(err, localapi.ErrNotRunning) {
		return unreachable(err)
	}
	return failed(err)
}

// waitForLink polls the agent until the link request seq is answered.
func waitForLink(ctx context.Context, c *localapi.Client, seq uint64, wait time.Duration) (*localapi.LinkRequestInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no answer from the registry within %s; see `switchboard status`", wait)
			}
			return nil, err
		}
		if r := st.Partner.Request; r != nil && r.Seq == seq && r.State != "pending" {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer from the registry within %s; the request stays queued, see `switchboard status`", wait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
