// Package benchkit holds the helpers every benchmark program under bench/
// uses: they fail loudly, run commands, and describe the machine.
package benchkit

import (
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Check panics on err: a benchmark that cannot measure stops.
func Check(err error) {
	if err != nil {
		panic(err)
	}
}

// Run runs a command, its output on standard error.
func Run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	Check(cmd.Run())
}

// CPUModel names the machine's CPU.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(line[strings.Index(line, ":")+1:])
		}
	}
	return "unknown CPU"
}

// FreePort returns a free loopback address (host:port).
func FreePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Check(err)
	defer l.Close()
	return l.Addr().String()
}

// Download fetches url with curl and returns MB/s.
func Download(url string) float64 {
	t0 := time.Now()
	out, err := exec.Command("curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url).Output()
	Check(err)
	n, _ := strconv.ParseFloat(string(out), 64)
	return n / 1e6 / time.Since(t0).Seconds()
}

// Alternate runs a and b in turns n times and returns their medians.
func Alternate(n int, a, b func() float64) (float64, float64) {
	va, vb := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		va[i], vb[i] = a(), b()
	}
	sort.Float64s(va)
	sort.Float64s(vb)
	return va[n/2], vb[n/2]
}

// Loadavg is the 1-minute load average.
func Loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
