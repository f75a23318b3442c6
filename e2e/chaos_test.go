//go:build chaos

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestChaos is the reliability suite (`make chaos`, docs/reliability.md):
// a 3-node cluster on real Docker, clients starting runs with idempotency
// keys and writing and reading objects, while faults hit the leader and
// the followers: SIGKILL (then restart), SIGSTOP (then SIGCONT) and raft
// partitions (a loopback proxy in front of each node's raft port). After
// healing it checks that no acknowledged write is lost, that the object
// history is linearizable (porcupine, a register per key), that no
// idempotency key started two runs, that every run ends and that no
// container is left, and prints the figures.
//
// CHAOS_DURATION (default 3m) is how long faults are injected;
// CHAOS_SEED fixes the random choices.
func TestChaos(t *testing.T) {
	dur := 3 * time.Minute
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
		dur = d
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("chaos: duration %s, seed %d", dur, seed)

	ensureImages(t)
	cn := newChaosNet()
	// Registered before the nodes' own cleanups, so it runs after them:
	// removed while a leader still supervised them, the extension
	// containers came back and outlived the suite.
	var clusterID string
	t.Cleanup(func() {
		if clusterID != "" {
			removeContainers(t, clusterID)
		}
	})
	c, proxies := chaosCluster(t, cn)
	h, err := c.Leader().Health()
	if err != nil || h.ClusterID == "" {
		t.Fatalf("leader health: %+v %v", h, err)
	}
	clusterID = h.ClusterID
	t.Cleanup(func() {
		if t.Failed() {
			runsKeepLogs(t, c)
		}
	})

	const pipeline = "chaos"
	admin := c.Client().Consistent()
	ctx := context.Background()
	pc, err := admin.RegisterConfig(ctx, &sdk.PipelineConfig{ID: pipeline, Name: "chaos", Parallelism: 2,
		Tasks: []*sdk.TaskConfig{runsSh("work", "echo working; sleep 1")}})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := admin.DeployConfig(ctx, pipeline, pc.Version); err != nil {
		t.Fatalf("deploy: %v", err)
	}

	began := time.Now()
	now := func() int64 { return time.Since(began).Nanoseconds() }
	rec := &chaosRecorder{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const objectWorkers, runWorkers = 4, 2
	regKeys := []string{"reg-a", "reg-b", "reg-c"}
	var nextClient atomic.Int64
	for w := 0; w < objectWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			chaosObjectWorker(c, pipeline, w, regKeys, rand.New(rand.NewSource(seed+int64(w)+1)), rec, now, &nextClient, stop)
		}(w)
	}
	for w := 0; w < runWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			chaosRunWorker(c, pipeline, w, rec, stop)
		}(w)
	}

	faults := chaosInject(t, c, cn, proxies, rng, dur)
	close(stop)
	wg.Wait()

	// Heal: every node running, no partition, one leader for all three.
	cn.HealAll()
	for _, n := range c.Nodes {
		if err := proxies[n].Up(); err != nil {
			t.Fatalf("proxy of %s: %v", n.Name, err)
		}
		n.Resume()
		if !n.Running() {
			n.Start()
		}
	}
	c.WaitForMembers(3)
	settled := time.Now()

	res := chaosCheck(t, c, admin, pipeline, regKeys, rec, now)
	res.faults = faults
	res.clusterID = clusterID
	cn.mu.Lock()
	res.proxied, res.unidentified = cn.accepted, cn.unidentified
	cn.mu.Unlock()

	// Every run terminal (bounded), then no container left (bounded).
	res.nonTerminal = -1
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		runs, err := chaosAllRuns(admin, pipeline)
		if err == nil {
			res.nonTerminal = 0
			for _, r := range runs {
				if r.State != model.RunStateComplete {
					res.nonTerminal++
				}
			}
			res.runsTotal = len(runs)
			if res.nonTerminal == 0 {
				break
			}
		}
		time.Sleep(time.Second)
	}
	res.orphans = -1
	deadline = time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		list, err := runsContainers(cctx, t, clusterID)
		cancel()
		if err == nil {
			res.orphans = len(list)
			res.orphanNames = runsContainerNames(list)
			if len(list) == 0 {
				break
			}
		}
		time.Sleep(time.Second)
	}
	res.settle = time.Since(settled)
	res.print(dur, seed)
	res.assert(t)
}

// chaosCluster starts three nodes, each advertising its raft proxy.
func chaosCluster(t *testing.T, cn *chaosNet) (*Cluster, map[*Node]*raftProxy) {
	c := &Cluster{t: t}
	proxies := map[*Node]*raftProxy{}
	env := []string{
		"GOFER_WEB_API__TASK_EXECUTION_STOP_TIMEOUT=" + runsStopGrace.String(),
		"GOFER_WEB_SCHEDULER__DOCKER__NETWORK=none",
		// No eviction: an evicted object would look like a lost write.
		"GOFER_WEB_OBJECT_STORE__PIPELINE_OBJECT_LIMIT=0",
	}
	first := NewNode(t, "node1", "--bootstrap")
	c.Nodes = append(c.Nodes, first)
	for i := 2; i <= 3; i++ {
		c.Nodes = append(c.Nodes, NewNode(t, fmt.Sprintf("node%d", i), "--join", first.URL))
	}
	for _, n := range c.Nodes {
		p, err := cn.newRaftProxy(n, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		proxies[n] = p
		n.Args = append(n.Args, "--raft-advertise", p.addr)
		n.Env = append(n.Env, env...)
	}
	// The first node bootstraps alone; the others join it once it leads.
	first.Start()
	c.WaitForMembers(1)
	for _, n := range c.Nodes[1:] {
		n.Start()
	}
	c.WaitForMembers(3)
	tok, err := c.Client().BootstrapToken(context.Background())
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	c.Token = tok.Secret
	c.WaitForMembers(3)
	return c, proxies
}

type chaosFaults struct {
	kills, stops, partitions, onLeader int
	// leaderChanges counts the times the injector saw a new leader.
	leaderChanges int
}

// chaosInject injects one fault at a time until dur has passed: a
// SIGKILL (restarted after the hold), a SIGSTOP (SIGCONT after the hold),
// or a partition (the target cut off from both peers, or from one),
// aimed at the leader half the time.
func chaosInject(t *testing.T, c *Cluster, cn *chaosNet, proxies map[*Node]*raftProxy, rng *rand.Rand, dur time.Duration) chaosFaults {
	var f chaosFaults
	end := time.Now().Add(dur)
	var last *Node
	for time.Now().Before(end) {
		time.Sleep(time.Duration(1000+rng.Intn(3000)) * time.Millisecond)
		leader := chaosLeader(c)
		if leader != nil && last != nil && leader != last {
			f.leaderChanges++
		}
		if leader != nil {
			last = leader
		}
		target := c.Nodes[rng.Intn(len(c.Nodes))]
		if leader != nil && rng.Intn(2) == 0 {
			target = leader
		}
		if target == leader {
			f.onLeader++
		}
		hold := time.Duration(1000+rng.Intn(5000)) * time.Millisecond
		switch kind := rng.Intn(3); kind {
		case 0:
			t.Logf("fault: SIGKILL %s for %s (leader %v)", target.Name, hold, target == leader)
			target.Kill()
			proxies[target].Down() // a dead node's port refuses
			f.kills++
			time.Sleep(hold)
			if err := proxies[target].Up(); err != nil {
				t.Fatalf("proxy of %s: %v", target.Name, err)
			}
			target.Start()
		case 1:
			t.Logf("fault: SIGSTOP %s for %s (leader %v)", target.Name, hold, target == leader)
			target.Pause()
			f.stops++
			time.Sleep(hold)
			target.Resume()
		default:
			var peers []*Node
			for _, n := range c.Nodes {
				if n != target {
					peers = append(peers, n)
				}
			}
			if rng.Intn(2) == 0 {
				peers = peers[:1]
			}
			var names []string
			for _, p := range peers {
				cn.Partition(target.Name, p.Name)
				names = append(names, p.Name)
			}
			t.Logf("fault: partition %s from %s for %s (leader %v)", target.Name, strings.Join(names, ","), hold, target == leader)
			f.partitions++
			time.Sleep(hold)
			cn.HealAll()
		}
	}
	return f
}

// chaosLeader is the node that says it leads, or nil (one look, no wait).
func chaosLeader(c *Cluster) *Node {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		if h, err := n.Health(); err == nil && h.State == "Leader" {
			return n
		}
	}
	return nil
}

// chaosRecorder collects the history and the acknowledged writes.
type chaosRecorder struct {
	mu         sync.Mutex
	ops        []porcupine.Operation
	unknownOps int
	failedOps  int
	// ackedObjects are write-once keys whose creation was acknowledged.
	ackedObjects map[string]string
	// runKeys: every idempotency key sent; ackedRuns: key -> run id.
	runKeys     map[string]bool
	ackedRuns   map[string]int64
	unknownRuns int
}

func (r *chaosRecorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// chaosClient talks to every node. Even workers' clients retry for 5 s
// (as the CLI does, resolving most unknown outcomes by sending the write
// again with its key); odd workers' clients do not retry at all, so
// unknown outcomes reach the worker and the history.
func chaosClient(c *Cluster, w int) (*client.Client, error) {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL)
	}
	retry := 5 * time.Second
	if w%2 == 1 {
		retry = 0
	}
	return client.New(urls, client.WithToken(c.Token), client.WithRetryFor(retry))
}

// chaosObjectWorker reads and writes three shared registers (pipeline
// objects, linearizable reads) and creates write-once objects of its own.
// An operation whose outcome is unknown stays pending forever in the
// history (it may take effect at any later time, or never), and the
// worker continues as a new porcupine client.
func chaosObjectWorker(c *Cluster, pipeline string, w int, keys []string, rng *rand.Rand, rec *chaosRecorder, now func() int64, ids *atomic.Int64, stop chan struct{}) {
	cl, err := chaosClient(c, w)
	if err != nil {
		return
	}
	reader := cl.Consistent()
	sc := client.ObjectScope{Pipeline: pipeline}
	id := int(ids.Add(1) - 1)
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		switch op := rng.Intn(5); {
		case op < 2: // read a register
			key := keys[rng.Intn(len(keys))]
			call := now()
			data, err := reader.GetObject(ctx, sc, key)
			ret := now()
			switch {
			case err == nil:
				rec.add(porcupine.Operation{ClientId: id, Input: regInput{key: key}, Output: regOutput{value: string(data)}, Call: call, Return: ret})
			case client.IsStatus(err, 404):
				rec.add(porcupine.Operation{ClientId: id, Input: regInput{key: key}, Output: regOutput{}, Call: call, Return: ret})
			default:
				rec.mu.Lock()
				rec.failedOps++
				rec.mu.Unlock()
			}
		case op < 4: // write a register
			key := keys[rng.Intn(len(keys))]
			val := fmt.Sprintf("w%d-%d", w, seq)
			call := now()
			_, err := cl.PutObject(ctx, sc, key, []byte(val), true)
			ret := now()
			switch {
			case err == nil:
				rec.add(porcupine.Operation{ClientId: id, Input: regInput{key: key, write: true, value: val}, Output: regOutput{}, Call: call, Return: ret})
			case client.IsUnknownOutcome(err) || errors.Is(err, context.DeadlineExceeded):
				rec.add(porcupine.Operation{ClientId: id, Input: regInput{key: key, write: true, value: val}, Output: regOutput{}, Call: call, Return: math.MaxInt64})
				rec.mu.Lock()
				rec.unknownOps++
				rec.mu.Unlock()
				id = int(ids.Add(1) - 1)
			default:
				rec.mu.Lock()
				rec.failedOps++
				rec.mu.Unlock()
			}
		default: // create a write-once object
			key := fmt.Sprintf("once-%d-%d", w, seq)
			val := key + "-value"
			_, err := cl.PutObject(ctx, sc, key, []byte(val), false)
			rec.mu.Lock()
			if err == nil {
				if rec.ackedObjects == nil {
					rec.ackedObjects = map[string]string{}
				}
				rec.ackedObjects[key] = val
			} else if client.IsUnknownOutcome(err) {
				rec.unknownOps++
			} else {
				rec.failedOps++
			}
			rec.mu.Unlock()
		}
		cancel()
		time.Sleep(time.Duration(20+rng.Intn(80)) * time.Millisecond)
	}
}

// chaosRunWorker starts runs, each with its own idempotency key; a start
// that failed is sent again with the same key until it is answered or
// the phase ends.
func chaosRunWorker(c *Cluster, pipeline string, w int, rec *chaosRecorder, stop chan struct{}) {
	cl, err := chaosClient(c, w)
	if err != nil {
		return
	}
	for seq := 0; ; seq++ {
		key := fmt.Sprintf("chaos-run-%d-%d", w, seq)
		rec.mu.Lock()
		if rec.runKeys == nil {
			rec.runKeys, rec.ackedRuns = map[string]bool{}, map[string]int64{}
		}
		rec.runKeys[key] = true
		rec.mu.Unlock()
		for attempt := 0; ; attempt++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			r, err := cl.StartRunWithKey(ctx, pipeline, key, nil)
			cancel()
			if err == nil {
				rec.mu.Lock()
				rec.ackedRuns[key] = r.RunID
				rec.mu.Unlock()
				break
			}
			if client.IsUnknownOutcome(err) {
				rec.mu.Lock()
				rec.unknownRuns++
				rec.mu.Unlock()
			}
			time.Sleep(300 * time.Millisecond)
		}
		select {
		case <-stop:
			return
		case <-time.After(1500 * time.Millisecond):
		}
	}
}

func chaosAllRuns(cl *client.Client, pipeline string) ([]*model.Run, error) {
	var all []*model.Run
	for off := 0; ; off += 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		page, err := cl.ListRuns(ctx, pipeline, client.Page{Limit: 200, Offset: off})
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 200 {
			return all, nil
		}
	}
}

type chaosResult struct {
	faults                   chaosFaults
	proxied, unidentified    int
	clusterID                string
	ops, unknownOps, failed  int
	linearizable             porcupine.CheckResult
	vizPath                  string
	ackedObjects, lostObject int
	runKeys, ackedRuns       int
	unknownRuns              int
	lostRuns, duplicateKeys  int
	keylessRuns              int
	runsTotal, nonTerminal   int
	orphans                  int
	orphanNames              string
	settle                   time.Duration
	details                  []string
}

// chaosCheck reads the state back after healing and checks the history.
func chaosCheck(t *testing.T, c *Cluster, admin *client.Client, pipeline string, regKeys []string, rec *chaosRecorder, now func() int64) *chaosResult {
	res := &chaosResult{}
	sc := client.ObjectScope{Pipeline: pipeline}
	ctx := context.Background()
	// A final linearizable read of every register joins the history.
	for _, k := range regKeys {
		call := now()
		data, err := admin.GetObject(ctx, sc, k)
		ret := now()
		if err != nil && !client.IsStatus(err, 404) {
			t.Fatalf("final read of %s: %v", k, err)
		}
		rec.add(porcupine.Operation{ClientId: 10000, Input: regInput{key: k}, Output: regOutput{value: string(data)}, Call: call, Return: ret})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.ops, res.unknownOps, res.failed = len(rec.ops), rec.unknownOps, rec.failedOps
	result, info := porcupine.CheckOperationsVerbose(registerModel, rec.ops, 2*time.Minute)
	res.linearizable = result
	if result != porcupine.Ok {
		res.vizPath = filepath.Join(os.TempDir(), fmt.Sprintf("gofer-chaos-%d.html", time.Now().Unix()))
		if err := porcupine.VisualizePath(registerModel, info, res.vizPath); err != nil {
			res.vizPath = "(visualization failed: " + err.Error() + ")"
		}
	}

	// Lost object writes: every acknowledged write-once object is there,
	// with its value.
	res.ackedObjects = len(rec.ackedObjects)
	var onceKeys []string
	for k := range rec.ackedObjects {
		onceKeys = append(onceKeys, k)
	}
	sort.Strings(onceKeys)
	for _, k := range onceKeys {
		data, err := admin.GetObject(ctx, sc, k)
		if err != nil || string(data) != rec.ackedObjects[k] {
			res.lostObject++
			res.details = append(res.details, fmt.Sprintf("acknowledged object %s: read %q, %v", k, data, err))
		}
	}

	// Runs: every acknowledged start is there under its key; no key
	// started two runs.
	runs, err := chaosAllRuns(admin, pipeline)
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	res.runKeys, res.ackedRuns, res.unknownRuns = len(rec.runKeys), len(rec.ackedRuns), rec.unknownRuns
	byKey := map[string][]int64{}
	byID := map[int64]*model.Run{}
	for _, r := range runs {
		byID[r.RunID] = r
		if r.IdempotencyKey == "" {
			res.keylessRuns++
			continue
		}
		byKey[r.IdempotencyKey] = append(byKey[r.IdempotencyKey], r.RunID)
	}
	for key, id := range rec.ackedRuns {
		if r := byID[id]; r == nil || r.IdempotencyKey != key {
			res.lostRuns++
			res.details = append(res.details, fmt.Sprintf("acknowledged run %d (key %s) is missing", id, key))
		}
	}
	for key, ids := range byKey {
		if len(ids) > 1 {
			res.duplicateKeys++
			res.details = append(res.details, fmt.Sprintf("key %s started runs %v", key, ids))
		}
	}
	return res
}

func (r *chaosResult) print(dur time.Duration, seed int64) {
	var b strings.Builder
	row := func(name string, v any, ok bool) {
		mark := "ok"
		if !ok {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %-44s %-14v %s\n", name, v, mark)
	}
	info := func(name string, v any) { fmt.Fprintf(&b, "  %-44s %v\n", name, v) }
	fmt.Fprintf(&b, "\nchaos summary (3 nodes, %s of faults, seed %d)\n", dur, seed)
	info("faults: SIGKILL+restart", r.faults.kills)
	info("faults: SIGSTOP+SIGCONT", r.faults.stops)
	info("faults: raft partitions", r.faults.partitions)
	info("faults aimed at the leader", r.faults.onLeader)
	info("leader changes seen between faults", r.faults.leaderChanges)
	info("raft connections through the proxies", r.proxied)
	row("proxied connections whose dialer is unknown", r.unidentified, r.unidentified == 0)
	info("object ops in history", r.ops)
	info("object writes with unknown outcome", r.unknownOps)
	info("object ops failed (not applied / read lost)", r.failed)
	row("linearizable object history (porcupine)", r.linearizable, r.linearizable == porcupine.Ok)
	if r.vizPath != "" {
		info("porcupine visualization", r.vizPath)
	}
	info("acknowledged write-once objects", r.ackedObjects)
	row("lost acknowledged object writes", r.lostObject, r.lostObject == 0)
	info("run idempotency keys sent", r.runKeys)
	info("run starts acknowledged", r.ackedRuns)
	info("run starts with unknown outcome (retried)", r.unknownRuns)
	row("lost acknowledged run starts", r.lostRuns, r.lostRuns == 0)
	row("idempotency keys with duplicate runs", r.duplicateKeys, r.duplicateKeys == 0)
	row("runs without their key", r.keylessRuns, r.keylessRuns == 0)
	info("runs in the cluster", r.runsTotal)
	row("runs not terminal after healing", r.nonTerminal, r.nonTerminal == 0)
	row("orphaned containers after settling", r.orphans, r.orphans == 0)
	info("time to settle (runs ended, containers gone)", r.settle.Round(time.Second))
	for _, d := range r.details {
		fmt.Fprintf(&b, "  ! %s\n", d)
	}
	// On stdout as it is, not indented like t.Log.
	fmt.Print(b.String())
}

func (r *chaosResult) assert(t *testing.T) {
	if r.linearizable != porcupine.Ok {
		t.Errorf("object history is %s, not linearizable (see %s)", r.linearizable, r.vizPath)
	}
	if r.lostObject != 0 || r.lostRuns != 0 {
		t.Errorf("lost acknowledged writes: %d objects, %d runs", r.lostObject, r.lostRuns)
	}
	if r.duplicateKeys != 0 || r.keylessRuns != 0 {
		t.Errorf("%d idempotency keys started more than one run; %d runs lack their key", r.duplicateKeys, r.keylessRuns)
	}
	if r.nonTerminal != 0 {
		t.Errorf("%d runs not terminal after healing", r.nonTerminal)
	}
	if r.unidentified != 0 {
		t.Errorf("%d raft connections carried data but could not be tied to a node: partitions did not cut them", r.unidentified)
	}
	if r.orphans != 0 {
		t.Errorf("%d containers of cluster %s left: %s", r.orphans, r.clusterID, r.orphanNames)
	}
}
