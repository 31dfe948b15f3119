package asterisk

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
)

// maxTechDetails bounds the per-technology entries in Details (the contract
// allows 64 entries in all); further technologies are summed up as "other".
const maxTechDetails = 24

// stateCounts counts endpoints by state.
type stateCounts struct{ total, online, offline, unknown int }

func (c *stateCounts) add(state string) {
	c.total++
	switch state {
	case "online":
		c.online++
	case "offline":
		c.offline++
	default:
		c.unknown++
	}
}

func (c stateCounts) String() string {
	return fmt.Sprintf("%d (online %d, offline %d, unknown %d)", c.total, c.online, c.offline, c.unknown)
}

// factsLocked turns the snapshot into what the agent reports. Callers hold
// a.mu and have checked a.snap != nil.
func (a *Adapter) factsLocked(now time.Time) plugins.Facts {
	s, cfg := a.snap, a.cfg
	info := s.info
	f := plugins.Facts{
		Product:      Product,
		Version:      oneLine(info.SystemInfo.Version, 100),
		Distribution: oneLine(cfg.Distribution, 100),
		Build:        oneLine(strings.Join(nonEmpty(info.BuildInfo.Os, info.BuildInfo.Kernel, info.BuildInfo.Machine), " "), 200),
		Details:      map[string]string{},
		Seats:        map[string]int64{plugins.SeatPBXEndpoints: int64(len(s.endpoints))},
	}
	d := f.Details
	put := func(k, v string) {
		if v = oneLine(v, 1000); v != "" {
			d[k] = v
		}
	}
	put("entity_id", info.SystemInfo.EntityID)
	put("system_name", info.ConfigInfo.Name)
	put("default_language", info.ConfigInfo.DefaultLanguage)
	if info.ConfigInfo.MaxChannels > 0 {
		put("max_channels", strconv.Itoa(info.ConfigInfo.MaxChannels))
	}
	put("build_date", info.BuildInfo.Date)
	put("build_user", info.BuildInfo.User)
	put("build_options", info.BuildInfo.Options)
	if start := time.Time(info.StatusInfo.StartupTime); !start.IsZero() {
		put("startup_time", start.UTC().Format(time.RFC3339))
		if up := now.Sub(start); up >= 0 {
			put("uptime", up.Round(time.Second).String())
		}
	}
	if reload := time.Time(info.StatusInfo.LastReloadTime); !reload.IsZero() {
		put("last_reload_time", reload.UTC().Format(time.RFC3339))
	}

	var all stateCounts
	byTech := map[string]*stateCounts{}
	for _, e := range s.endpoints {
		all.add(e.state)
		c := byTech[e.tech]
		if c == nil {
			c = &stateCounts{}
			byTech[e.tech] = c
		}
		c.add(e.state)
	}
	put("endpoints", all.String())
	techs := make([]string, 0, len(byTech))
	for t := range byTech {
		techs = append(techs, t)
	}
	// Largest technologies first, so "other" holds the smallest.
	sort.Slice(techs, func(i, j int) bool {
		if byTech[techs[i]].total != byTech[techs[j]].total {
			return byTech[techs[i]].total > byTech[techs[j]].total
		}
		return techs[i] < techs[j]
	})
	var other stateCounts
	for i, t := range techs {
		if i < maxTechDetails {
			put("endpoints."+oneLine(t, 64), byTech[t].String())
			continue
		}
		c := byTech[t]
		other.total, other.online, other.offline, other.unknown = other.total+c.total, other.online+c.online, other.offline+c.offline, other.unknown+c.unknown
	}
	if other.total > 0 {
		put("endpoints.other", other.String())
	}
	put("channels_live", strconv.Itoa(len(s.channels)))
	put("ari_url", cfg.URL)
	put("ari_application", cfg.App)
	put("read_at", s.readAt.UTC().Format(time.RFC3339))
	switch a.state {
	case StateConnected:
		put("link", "connected since "+a.since.UTC().Format(time.RFC3339)+"; counts live from events")
	default:
		put("link", fmt.Sprintf("%s since %s: %s; counts as last seen", a.state, a.since.UTC().Format(time.RFC3339), a.reason))
	}
	if a.ignored > 0 {
		put("events_ignored", strconv.FormatInt(a.ignored, 10))
	}
	if a.undecodable > 0 {
		put("events_undecodable", strconv.FormatInt(a.undecodable, 10))
	}
	return f
}

func nonEmpty(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
