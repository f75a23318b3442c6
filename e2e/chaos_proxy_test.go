//go:build chaos

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// raftProxy stands in front of one node's raft port: the node advertises
// the proxy's address, so every raft connection from a peer passes
// through it. The proxy finds which node dialed (the process holding the
// other end of the loopback connection, from /proc) and, while the pair
// is partitioned, blackholes the connection: bytes are read and dropped,
// nothing is answered, nothing is refused — a cut cable, not a dead
// host. Connections that were blackholed are closed when the pair heals
// (their streams lost bytes).
//
// While its node is killed the proxy does not listen either (Down, Up):
// a dead node's raft port refuses connections, and the followers' probe
// of a silent leader (agent/failfast.go) relies on that refusal.
type raftProxy struct {
	owner  *Node
	target string
	addr   string
	net    *chaosNet
	mu     sync.Mutex
	ln     net.Listener
}

// chaosNet is the set of proxies and the pairs currently partitioned.
type chaosNet struct {
	mu      sync.Mutex
	nodes   []*Node
	blocked map[[2]string]bool
	conns   map[*proxyConn]bool
	// accepted counts the proxied connections; unidentified those that
	// carried data and whose dialer was not found (never cut: a partition
	// would miss them). A probe that connects and closes at once
	// (agent/failfast.go) is often gone before it can be looked up.
	accepted, unidentified int
}

type proxyConn struct {
	src, dst string // node names; src "" when the dialer is unknown
	a, b     net.Conn
	mu       sync.Mutex
	cut      bool
	sent     bool // the dialer sent bytes
}

func newChaosNet() *chaosNet {
	return &chaosNet{blocked: map[[2]string]bool{}, conns: map[*proxyConn]bool{}}
}

func pairKey(x, y string) [2]string {
	if x > y {
		x, y = y, x
	}
	return [2]string{x, y}
}

// Partition cuts raft traffic between x and y, both ways.
func (cn *chaosNet) Partition(x, y string) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.blocked[pairKey(x, y)] = true
}

// HealAll removes every partition and closes the connections that were
// blackholed.
func (cn *chaosNet) HealAll() {
	cn.mu.Lock()
	cn.blocked = map[[2]string]bool{}
	var cut []*proxyConn
	for pc := range cn.conns {
		pc.mu.Lock()
		if pc.cut {
			cut = append(cut, pc)
		}
		pc.mu.Unlock()
	}
	cn.mu.Unlock()
	for _, pc := range cut {
		pc.close()
	}
}

func (cn *chaosNet) isBlocked(x, y string) bool {
	if x == "" || y == "" {
		return false
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.blocked[pairKey(x, y)]
}

// newRaftProxy listens on a fresh loopback port for owner's raft port.
func (cn *chaosNet) newRaftProxy(owner *Node, listen string) (*raftProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &raftProxy{owner: owner, target: owner.RaftAddr, addr: ln.Addr().String(), ln: ln, net: cn}
	cn.mu.Lock()
	cn.nodes = append(cn.nodes, owner)
	cn.mu.Unlock()
	go p.serve(ln)
	return p, nil
}

// Close stops listening (Down); Up listens again on the same address.
func (p *raftProxy) Close() { p.Down() }

// Down stops accepting connections: dials are refused.
func (p *raftProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// Up listens again on the proxy's address.
func (p *raftProxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln = ln
	go p.serve(ln)
	return nil
}

func (p *raftProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *raftProxy) handle(in net.Conn) {
	src := p.net.dialer(in)
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	pc := &proxyConn{src: src, dst: p.owner.Name, a: in, b: out}
	p.net.mu.Lock()
	p.net.accepted++
	p.net.conns[pc] = true
	p.net.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.net.pump(pc, out, in); done <- struct{}{} }()
	go func() { p.net.pump(pc, in, out); done <- struct{}{} }()
	<-done
	pc.close()
	<-done
	p.net.mu.Lock()
	delete(p.net.conns, pc)
	pc.mu.Lock()
	if pc.src == "" && pc.sent {
		p.net.unidentified++
	}
	pc.mu.Unlock()
	p.net.mu.Unlock()
}

func (pc *proxyConn) close() {
	pc.a.Close()
	pc.b.Close()
}

// pump copies from r to w, dropping the bytes while the pair is
// partitioned. A connection that was cut is closed once it would carry
// data again.
func (cn *chaosNet) pump(pc *proxyConn, w, r net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && r == pc.a {
			pc.mu.Lock()
			pc.sent = true
			pc.mu.Unlock()
		}
		if n > 0 {
			if cn.isBlocked(pc.src, pc.dst) {
				pc.mu.Lock()
				pc.cut = true
				pc.mu.Unlock()
			} else {
				pc.mu.Lock()
				cut := pc.cut
				pc.mu.Unlock()
				if cut {
					return
				}
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// dialer names the node whose process holds the other end of the
// loopback connection c ("" when none does).
func (cn *chaosNet) dialer(c net.Conn) string {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok || !ok2 {
		return ""
	}
	inode := socketInode(remote.Port, local.Port)
	if inode == "" {
		return ""
	}
	want := "socket:[" + inode + "]"
	cn.mu.Lock()
	nodes := append([]*Node(nil), cn.nodes...)
	cn.mu.Unlock()
	for _, n := range nodes {
		pid := n.Pid()
		if pid == 0 {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
				return n.Name
			}
		}
	}
	return ""
}

// socketInode finds, in /proc/net/tcp, the inode of the socket whose
// local port is localPort and remote port is remotePort.
func socketInode(localPort, remotePort int) string {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if hexPort(fields[1]) == localPort && hexPort(fields[2]) == remotePort {
			return fields[9]
		}
	}
	return ""
}

func hexPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(addr[i+1:], 16, 32)
	if err != nil {
		return -1
	}
	return int(p)
}
