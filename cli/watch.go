package cli

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// A watch polls the run and its tasks, and a task can pass through a
// state between two polls (a container that runs for 50 ms is waiting at
// one poll and complete at the next). So the watcher does not print the
// states it happens to see: it derives every transition from the
// timestamps the records keep — a run's created/started/ended, a task's
// scheduled/started/ended and one entry per finished attempt — and prints
// each once, stamped with when it happened, in time order.

// transition is one state change of the run or of one task.
type transition struct {
	at   int64  // epoch ms
	who  string // "run 3" or a task id
	line string
	key  string // identifies the transition so it prints once
}

// watcher remembers which transitions it printed.
type watcher struct {
	w       io.Writer
	printed map[string]bool
}

func newWatcher(w io.Writer) *watcher { return &watcher{w: w, printed: map[string]bool{}} }

// report prints the transitions of r and tasks not printed before,
// oldest first.
func (wt *watcher) report(r *model.Run, tasks []*model.TaskExecution) {
	all := runTransitions(r)
	for _, t := range tasks {
		for _, tr := range taskTransitions(t) {
			if tr.at == 0 {
				tr.at = r.Created // a task recorded before tasks kept their creation time
			}
			all = append(all, tr)
		}
	}
	var fresh []transition
	for _, tr := range all {
		if !wt.printed[tr.key] {
			wt.printed[tr.key] = true
			fresh = append(fresh, tr)
		}
	}
	sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].at < fresh[j].at })
	for _, tr := range fresh {
		fmt.Fprintf(wt.w, "%s  %-20s %s\n", clock(tr.at), tr.who, tr.line)
	}
}

func clock(ms int64) string {
	if ms == 0 {
		return "--:--:--"
	}
	return time.UnixMilli(ms).Format("15:04:05")
}

func runTransitions(r *model.Run) []transition {
	who := fmt.Sprintf("run %d", r.RunID)
	out := []transition{{at: r.Created, who: who, line: string(model.RunStatePending), key: "run/pending"}}
	if r.Started != 0 {
		out = append(out, transition{at: r.Started, who: who, line: string(model.RunStateRunning), key: "run/running"})
	}
	if r.State == model.RunStateComplete {
		line := string(r.Status)
		if r.StatusReason != nil && r.StatusReason.Reason != "" && r.Status != model.RunStatusSuccessful {
			line += ": " + r.StatusReason.Reason
		}
		out = append(out, transition{at: r.Ended, who: who, line: line, key: "run/complete"})
	}
	return out
}

// taskTransitions lists what a task went through, from its record: waiting,
// then per attempt scheduled and running, a failed attempt that is retried,
// and how it ended.
func taskTransitions(t *model.TaskExecution) []transition {
	tr := func(at int64, key, line string) transition {
		return transition{at: at, who: t.TaskID, line: line, key: t.TaskID + "/" + key}
	}
	out := []transition{tr(t.Created, "waiting", "waiting")}
	attemptWord := func(n int) string {
		if n > 1 {
			return fmt.Sprintf(" (attempt %d)", n)
		}
		return ""
	}
	started := func(n int, scheduled, running int64) {
		if scheduled != 0 {
			out = append(out, tr(scheduled, fmt.Sprintf("%d/scheduled", n), "scheduled"+attemptWord(n)))
		}
		if running != 0 {
			out = append(out, tr(running, fmt.Sprintf("%d/running", n), "running"+attemptWord(n)))
		}
	}
	for _, a := range t.Attempts {
		// Only the current attempt's scheduling time is kept; an earlier
		// attempt's counts from its start.
		scheduled := a.Started
		if a.Attempt == t.Attempt {
			scheduled = t.Scheduled
		}
		started(a.Attempt, scheduled, a.Started)
		if a.Attempt < t.Attempt || t.State != model.TaskStateComplete {
			line := string(a.Status)
			if a.ExitCode != nil {
				line += fmt.Sprintf(" (exit %d)", *a.ExitCode)
			}
			out = append(out, tr(a.Ended, fmt.Sprintf("%d/retry", a.Attempt), line+"; waiting to retry"))
		}
	}
	if n := t.Attempt; n > 0 && (len(t.Attempts) == 0 || t.Attempts[len(t.Attempts)-1].Attempt < n) {
		started(n, t.Scheduled, t.Started) // the attempt under way
	}
	if t.State == model.TaskStateComplete {
		out = append(out, tr(t.Ended, "complete", taskLine(t)))
	}
	return out
}
