package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// peersFile, placed in the data dir of a stopped node, replaces the
// cluster's membership on the node's next start: the way out of a lost
// quorum. It is applied once and renamed to peersRecoveredFile.
const (
	peersFile          = "peers.json"
	peersRecoveredFile = "peers.json.recovered"
)

// recoverPeers applies dataDir/peers.json when it exists: it rewrites the
// node's raft state so its configuration is the one in the file (raft's
// RecoverCluster: restore the newest snapshot, replay the log, write a new
// snapshot holding the configuration, drop the log), then renames the file
// so the next start does not apply it again. It reports whether it
// recovered. A file that cannot be read, does not parse or does not name
// this node stops the start with an error naming the file; nothing is
// changed then.
func (a *Agent) recoverPeers(rc *raft.Config, logs raft.LogStore) (bool, error) {
	dir := a.cfg.Server.DataDir
	path := filepath.Join(dir, peersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("recovery file %s: %w", path, err)
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return false, fmt.Errorf("recovery file %s is not valid (a JSON list of "+
			`{"id": ..., "address": ..., "non_voter": false}): %w`, path, err)
	}
	var self *raft.Server
	for i := range conf.Servers {
		if conf.Servers[i].ID == rc.LocalID {
			self = &conf.Servers[i]
		}
	}
	if self == nil {
		return false, fmt.Errorf("recovery file %s does not list this node (id %q); every node that applies it "+
			"must be in it", path, rc.LocalID)
	}
	if self.Suffrage != raft.Voter {
		return false, fmt.Errorf("recovery file %s lists this node (id %q) as a non-voter; a node recovering "+
			"quorum must be a voter", path, rc.LocalID)
	}
	if string(self.Address) != a.cfg.RaftAdvertise() {
		a.logger.Warn("recovery file gives this node another raft address than server.raft_advertise",
			"file", path, "in_file", self.Address, "raft_advertise", a.cfg.RaftAdvertise())
	}
	a.logger.Warn("RECOVERING CLUSTER MEMBERSHIP from "+path+": this node's raft configuration is replaced by the "+
		"file's; only do this when quorum is lost for good", "servers", fmt.Sprint(conf.Servers))
	if err := raft.RecoverCluster(rc, recoveryFSM{a.fsm}, logs, a.logStore, a.snapshots, a.transport, conf); err != nil {
		return false, fmt.Errorf("recover cluster from %s: %w", path, err)
	}
	if err := os.Rename(path, filepath.Join(dir, peersRecoveredFile)); err != nil {
		return false, fmt.Errorf("recovered from %s but could not rename it (remove it before the next start, "+
			"or it is applied again): %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return false, err
	}
	a.logger.Warn("cluster membership recovered; the file was renamed so it is applied once",
		"file", filepath.Join(dir, peersRecoveredFile))
	return true, nil
}

// recoveryFSM hands raft.RecoverCluster the node's FSM with one change:
// RecoverCluster never releases the snapshot it persists, and ours holds a
// bbolt read transaction until released, which would block the restore and
// every later remap of the state file. The snapshot is released when
// persisted.
type recoveryFSM struct{ raft.FSM }

func (f recoveryFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return releasingSnapshot{s}, nil
}

type releasingSnapshot struct{ raft.FSMSnapshot }

func (s releasingSnapshot) Persist(sink raft.SnapshotSink) error {
	defer s.FSMSnapshot.Release()
	return s.FSMSnapshot.Persist(sink)
}

func (s releasingSnapshot) Release() {}
