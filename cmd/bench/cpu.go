package main

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// On a small machine every process of the benchmark competes for the same
// cores, so throughput follows the CPU all of them spend per media. The
// benchmark therefore accounts for the CPU of each part, not only the
// worker's, and for what the rest of the machine took meanwhile.

// cpuParts names the processes of a phase by part: "worker", "postgres",
// "redis", "emulator", "s3", "bench".
type cpuParts map[string][]int

// cpuSnapshot is the CPU time each process of each part, and the whole
// machine, had used at one moment.
type cpuSnapshot struct {
	parts   map[string]map[int]time.Duration
	machine time.Duration // busy time of all CPUs, from /proc/stat
}

func takeCPU(parts cpuParts) cpuSnapshot {
	s := cpuSnapshot{parts: map[string]map[int]time.Duration{}}
	for name, pids := range parts {
		m := map[int]time.Duration{}
		for _, pid := range pids {
			if t, err := cpuTime(pid); err == nil {
				m[pid] = t
			}
		}
		s.parts[name] = m
	}
	s.machine, _ = machineBusy()
	return s
}

// cpuUse is the CPU each part used in a phase, and the machine's total.
type cpuUse struct {
	parts   map[string]time.Duration
	machine time.Duration
}

// cpuBetween is what was used from a to b. A process seen only in b (a
// database backend opened during the phase) counts from zero.
func cpuBetween(a, b cpuSnapshot) cpuUse {
	u := cpuUse{parts: map[string]time.Duration{}, machine: b.machine - a.machine}
	for name, m := range b.parts {
		for pid, t := range m {
			u.parts[name] += t - a.parts[name][pid]
		}
	}
	return u
}

func (u cpuUse) total() time.Duration {
	var t time.Duration
	for _, d := range u.parts {
		t += d
	}
	return t
}

// others is the CPU the rest of the machine used meanwhile: other users'
// programs, and parts the benchmark does not attribute (Postgres's
// background writers, the kernel's own threads).
func (u cpuUse) others() time.Duration { return max(0, u.machine-u.total()) }

// machineBusy reads the time all CPUs spent not idle.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat format")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// backendPIDs lists the Postgres server processes serving a database.
func backendPIDs(ctx context.Context, conn *pgx.Conn, db string) ([]int, error) {
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}
