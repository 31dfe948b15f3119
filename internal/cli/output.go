package cli

import (
	"encoding/json"
	"fmt"
	"io"
)

// render writes v as indented JSON when --output json was given, and
// otherwise calls text to write the human form.
func (a *App) render(v any, text func(w io.Writer) error) error {
	if a.JSON() {
		return writeJSON(a.Stdout, v)
	}
	return text(a.Stdout)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}
