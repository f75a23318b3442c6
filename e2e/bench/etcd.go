package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdCluster is 3 etcd members on 127.0.0.1, each with its own client
// and peer port and a data dir under the run's temp dir.
type etcdCluster struct {
	members  []*etcdMember
	payloads []string
	keys     int
}

type etcdMember struct {
	name      string
	clientURL string
	proc      *proc
}

// etcd timing, the 3.4 defaults, stated explicitly so the table can say so.
const (
	etcdHeartbeatMS = 100
	etcdElectionMS  = 1000
)

func startEtcd(ctx context.Context, reg *procs, bin, dir string, size int, payloads []string) (*etcdCluster, error) {
	c := &etcdCluster{payloads: payloads, keys: 100000}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type ports struct{ client, peer int }
	var ps []ports
	var initial []string
	for i := 1; i <= size; i++ {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		ps = append(ps, ports{cp, pp})
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, pp))
	}
	for i := 1; i <= size; i++ {
		name := fmt.Sprintf("m%d", i)
		cu := fmt.Sprintf("http://127.0.0.1:%d", ps[i-1].client)
		pu := fmt.Sprintf("http://127.0.0.1:%d", ps[i-1].peer)
		args := []string{
			"--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", cu, "--advertise-client-urls", cu,
			"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "gofer-bench", "--initial-cluster-state", "new",
			"--heartbeat-interval", fmt.Sprint(etcdHeartbeatMS), "--election-timeout", fmt.Sprint(etcdElectionMS),
		}
		m := &etcdMember{name: name, clientURL: cu,
			proc: reg.newProc("etcd "+name, bin, args, nil, filepath.Join(dir, name+".log"))}
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		if err := m.proc.start(); err != nil {
			return nil, err
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		return nil, fmt.Errorf("etcd cluster did not come up: %w\n%s", err, tail(c.members[0].proc.logPath, 20))
	}
	return c, nil
}

func newEtcdClient(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

func (c *etcdCluster) Name() string            { return "etcd" }
func (c *etcdCluster) Size() int               { return len(c.members) }
func (c *etcdCluster) MemberName(i int) string { return c.members[i].name }
func (c *etcdCluster) Kill(i int)              { c.members[i].proc.kill() }
func (c *etcdCluster) Restart(i int) error     { return c.members[i].proc.start() }
func (c *etcdCluster) Pause(i int)             { c.members[i].proc.signal(syscall.SIGSTOP) }
func (c *etcdCluster) Resume(i int)            { c.members[i].proc.signal(syscall.SIGCONT) }

func (c *etcdCluster) stop() {
	for _, m := range c.members {
		m.proc.kill()
	}
}

// status asks one member about itself with a fresh client (a long-lived
// client to a killed member would sit in gRPC's reconnect backoff).
func (c *etcdCluster) status(ctx context.Context, i int) (*clientv3.StatusResponse, error) {
	cl, err := newEtcdClient(c.members[i].clientURL)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return cl.Status(sctx, c.members[i].clientURL)
}

// Leader returns the member every running member names as leader.
func (c *etcdCluster) Leader(ctx context.Context) (int, error) {
	var leaderID uint64
	idx := -1
	for i, m := range c.members {
		if !m.proc.running() {
			continue
		}
		st, err := c.status(ctx, i)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", m.name, err)
		}
		if st.Leader == 0 {
			return -1, fmt.Errorf("%s knows no leader", m.name)
		}
		if leaderID != 0 && st.Leader != leaderID {
			return -1, fmt.Errorf("members disagree on the leader")
		}
		leaderID = st.Leader
		if st.Header.MemberId == st.Leader {
			idx = i
		}
	}
	if idx < 0 {
		return -1, fmt.Errorf("no running member is the leader yet")
	}
	return idx, nil
}

// WaitHealthy waits for an agreed leader and a successful put through it,
// then for every member to have applied that put.
func (c *etcdCluster) WaitHealthy(ctx context.Context) error {
	timeout := 60 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	var rev int64
	if err := waitFor(timeout, "etcd leader accepts a put", func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, m := range c.members {
			if err := exited(m.proc); err != nil {
				return err
			}
		}
		li, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		cl, err := newEtcdClient(c.members[li].clientURL)
		if err != nil {
			return err
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		put, err := cl.Put(pctx, "bench-health", time.Now().String())
		if err != nil {
			return err
		}
		rev = put.Header.Revision
		return nil
	}); err != nil {
		return err
	}
	return waitFor(timeout, "etcd members catch up", func() error {
		for _, m := range c.members {
			if err := exited(m.proc); err != nil {
				return err
			}
			mc, err := newEtcdClient(m.clientURL)
			if err != nil {
				return err
			}
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			g, err := mc.Get(gctx, "bench-health", clientv3.WithSerializable())
			cancel()
			mc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if g.Header.Revision < rev {
				return fmt.Errorf("%s at revision %d, want %d", m.name, g.Header.Revision, rev)
			}
		}
		return nil
	})
}

// WriterVia puts 256-byte values through member i.
func (c *etcdCluster) WriterVia(i int) (func(ctx context.Context, rng *rand.Rand) error, func(), error) {
	cl, err := newEtcdClient(c.members[i].clientURL)
	if err != nil {
		return nil, nil, err
	}
	write := func(ctx context.Context, rng *rand.Rand) error {
		_, err := cl.Put(ctx, c.key(rng), c.payloads[rng.IntN(len(c.payloads))])
		return err
	}
	return write, func() { cl.Close() }, nil
}

func (c *etcdCluster) key(rng *rand.Rand) string {
	return fmt.Sprintf("k%07d", rng.IntN(c.keys))
}

// writeLoad returns an op that puts through the leader over conns gRPC
// connections (clients), worker w using connection w % conns.
func (c *etcdCluster) writeLoad(ctx context.Context, conns int) (opFunc, func(), error) {
	li, err := c.Leader(ctx)
	if err != nil {
		return nil, nil, err
	}
	var clients []*clientv3.Client
	closeAll := func() {
		for _, cl := range clients {
			cl.Close()
		}
	}
	for i := 0; i < conns; i++ {
		cl, err := newEtcdClient(c.members[li].clientURL)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		clients = append(clients, cl)
	}
	op := func(ctx context.Context, w int, rng *rand.Rand) error {
		_, err := clients[w%len(clients)].Put(ctx, c.key(rng), c.payloads[rng.IntN(len(c.payloads))])
		return err
	}
	return op, closeAll, nil
}
