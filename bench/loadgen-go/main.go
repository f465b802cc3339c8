// The load generator of bench/loadgen.mjs's live and connect modes over
// HTTP/1.1, in Go: thousands of raw TCP streams, each a hand-written GET, a
// chunked-body decoder and a frame counter, so that the clients cost less than
// the server they measure (a Node process spends more per received frame than the bridge
// spends sending it). All streams on one thread: one epoll set, one read per
// readable socket per wake, wakes batched (see batchMs); a goroutine per
// stream cost a second read (the one that finds nothing) and the scheduler's
// work per message, and unbatched wakes one epoll_wait per two reads. Same
// arguments, same JSON lines, same histogram format; bench/run.mjs uses it
// when `go` is installed (--loadgen=node uses the other).
//
//	loadgen-go '{"url":"http://127.0.0.1:8080/v2/stream/t","mode":"live","connections":2500,"rampPerSec":250}'
//	loadgen-go '{"url":"…","mode":"connect","rate":2000,"count":20000,"closeAfter":"firstMessage","resumeBack":100}'
//
// live: {"event":"connected",...} once every stream has answered (or
// failed), then {"event":"result",...} after {"cmd":"report"} on stdin.
// connect: {"event":"result",...} once every stream is done.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type args struct {
	URL         string  `json:"url"`
	Mode        string  `json:"mode"`
	Connections int     `json:"connections"`
	RampPerSec  float64 `json:"rampPerSec"`
	H2          bool    `json:"h2"`
	// After a wake that found sockets ready, wait this long and take all that
	// are ready then (default 5): one epoll_wait per batch instead of one per
	// one or two sockets. Latency is stamped after the wait, so it can only
	// overstate the server's latency, by at most this much.
	BatchMs *int `json:"batchMs"`
	// connect: open Count streams at Rate per second, each closed at its first
	// body byte (CloseAfter "firstByte") or first message ("firstMessage"); with
	// ResumeBack, each sends a Last-Event-ID that many offsets behind the
	// latest id of an anchor stream held open meanwhile.
	Rate       float64 `json:"rate"`
	Count      int     `json:"count"`
	CloseAfter string  `json:"closeAfter"`
	ResumeBack int64   `json:"resumeBack"`
}

// CLOCK_MONOTONIC in µs, as the producer stamps messages (Node's
// process.hrtime): read once with the system call, then advanced by Go's own
// monotonic clock (the same clock, read through the vDSO).
var monoStartUs int64
var start = time.Now()

func init() {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	start = time.Now()
	monoStartUs = ts.Sec*1_000_000 + ts.Nsec/1000
}

func nowUs() int64 { return monoStartUs + time.Since(start).Microseconds() }

// bench/lib/common.mjs's Histogram: buckets of log10(µs) × 200.
const bucketsPerDecade = 200
const maxBucket = 12 * bucketsPerDecade

type histogram struct {
	counts [maxBucket + 1]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	min    atomic.Int64
	max    atomic.Int64
}

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

func (h *histogram) record(us int64) {
	v := us
	if v < 1 {
		v = 1
	}
	b := int(math.Floor(math.Log10(float64(v)) * bucketsPerDecade))
	if b > maxBucket {
		b = maxBucket
	}
	h.counts[b].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.min.Load()
		if us >= m || h.min.CompareAndSwap(m, us) {
			break
		}
	}
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

func (h *histogram) MarshalJSON() ([]byte, error) {
	counts := [][2]int64{}
	for b := range h.counts {
		if c := h.counts[b].Load(); c > 0 {
			counts = append(counts, [2]int64{int64(b), c})
		}
	}
	n := h.n.Load()
	out := map[string]any{"counts": counts, "n": n, "sum": h.sum.Load(), "max": h.max.Load()}
	if n > 0 {
		out["min"] = h.min.Load()
	} else {
		out["min"] = nil // JSON has no Infinity; the runner only reads min when n > 0
	}
	return json.Marshal(out)
}

var (
	latency = newHistogram()
	ttfb    = newHistogram()
	ttfm    = newHistogram()
	stdout  = bufio.NewWriter(os.Stdout)
	outMu   sync.Mutex
)

func emit(v any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	stdout.Write(b)
	stdout.WriteByte('\n')
	stdout.Flush()
	outMu.Unlock()
}

var stamp = []byte(`"bench_t":`)
var frameEnd = []byte("\n\n")

// One stream: its socket and the decoding state of its response.
type stream struct {
	fd       int
	startAt  int64
	status   int
	count    int64
	ended    bool
	answered bool
	err      string
	// Until the head is complete: its bytes so far.
	head    []byte
	inBody  bool
	chunked bool
	gotByte bool
	// Chunked decoding: bytes left in the current chunk, CRLF bytes to skip, a partial size line.
	need, skip int
	line       []byte
	// Body text after the last complete frame, not yet counted.
	rest []byte
	// The request sent once connected.
	req []byte
	// The anchor of a connect run keeps the id of its latest frame.
	wantsID bool
	lastID  []byte
	done    bool
}

var idLine = []byte("id: ")

// The value of the last `id: ` line in region (frames, each ending "\n\n"), or nil.
func lastIDIn(region []byte) []byte {
	for end := len(region); end > 0; {
		k := bytes.LastIndex(region[:end], idLine)
		if k < 0 {
			return nil
		}
		if k == 0 || region[k-1] == '\n' {
			v := region[k+len(idLine):]
			if j := bytes.IndexByte(v, '\n'); j >= 0 {
				v = v[:j]
			}
			return append([]byte(nil), v...)
		}
		end = k
	}
	return nil
}

// Counts the complete frames holding a stamp in s.rest, recording each one's
// latency, and keeps what follows the last complete frame.
func (s *stream) frames(at int64) {
	rest := s.rest
	end := bytes.LastIndex(rest, frameEnd)
	if end < 0 {
		return
	}
	region := rest[:end]
	before := s.count
	for i := bytes.Index(region, stamp); i >= 0; {
		j := i + len(stamp)
		var t int64
		for ; j < len(region) && region[j] >= '0' && region[j] <= '9'; j++ {
			t = t*10 + int64(region[j]-'0')
		}
		s.count++
		latency.record(at - t)
		k := bytes.Index(region[j:], stamp)
		if k < 0 {
			break
		}
		i = j + k
	}
	if before == 0 && s.count > 0 {
		ttfm.record(at - s.startAt)
	}
	if s.wantsID {
		if id := lastIDIn(region); id != nil {
			s.lastID = id
		}
	}
	n := copy(rest, rest[end+2:])
	s.rest = rest[:n]
}

// Takes bytes read from the socket: the head, then the (chunked) body.
func (s *stream) data(data []byte, at int64, answered func(*stream)) {
	if !s.inBody {
		s.head = append(s.head, data...)
		h := bytes.Index(s.head, []byte("\r\n\r\n"))
		if h < 0 {
			return
		}
		if len(s.head) >= 12 {
			s.status, _ = strconv.Atoi(string(s.head[9:12]))
		}
		s.chunked = bytes.Contains(bytes.ToLower(s.head[:h]), []byte("\r\ntransfer-encoding: chunked"))
		data = s.head[h+4:]
		s.inBody = true
		answered(s)
		defer func() { s.head = nil }()
		if len(data) == 0 {
			return
		}
	}
	if !s.gotByte {
		s.gotByte = true
		ttfb.record(at - s.startAt)
	}
	if !s.chunked {
		s.rest = append(s.rest, data...)
	} else {
		for i := 0; i < len(data); {
			switch {
			case s.need > 0:
				take := min(s.need, len(data)-i)
				s.rest = append(s.rest, data[i:i+take]...)
				s.need -= take
				i += take
				if s.need == 0 {
					s.skip = 2
				}
			case s.skip > 0:
				i++
				s.skip--
			default:
				j := bytes.IndexByte(data[i:], '\n')
				if j < 0 {
					s.line = append(s.line, data[i:]...)
					i = len(data)
					continue
				}
				s.line = append(s.line, data[i:i+j]...)
				size, _ := strconv.ParseInt(string(bytes.TrimSpace(s.line)), 16, 64)
				s.line = s.line[:0]
				i += j + 1
				if size == 0 {
					s.ended = true
					i = len(data)
					continue
				}
				s.need = int(size)
			}
		}
	}
	s.frames(at)
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	case syscall.ECONNRESET:
		return "ECONNRESET"
	case syscall.EPIPE:
		return "EPIPE"
	case syscall.EMFILE:
		return "EMFILE"
	case syscall.EADDRNOTAVAIL:
		return "EADDRNOTAVAIL"
	}
	return e.Error()
}

func main() {
	var a args
	if len(os.Args) > 1 {
		if err := json.Unmarshal([]byte(os.Args[1]), &a); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen-go: bad arguments:", err)
			os.Exit(2)
		}
	}
	if a.Mode != "" && a.Mode != "live" && a.Mode != "connect" || a.H2 {
		fmt.Fprintln(os.Stderr, "loadgen-go: only the live and connect modes over HTTP/1.1; use bench/loadgen.mjs")
		os.Exit(2)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen-go: bad url:", err)
		os.Exit(2)
	}
	addr, err := net.ResolveTCPAddr("tcp4", u.Host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen-go: bad address:", err)
		os.Exit(2)
	}
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	n := max(1, a.Connections)
	ramp := a.RampPerSec
	if ramp <= 0 {
		ramp = 1000
	}
	request := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", u.RequestURI(), u.Host))

	reports := make(chan struct{}, 1)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			var cmd struct {
				Cmd string `json:"cmd"`
			}
			if json.Unmarshal(in.Bytes(), &cmd) == nil && cmd.Cmd == "report" {
				reports <- struct{}{}
			}
		}
	}()

	// Everything else on one thread: one epoll set, one read per readable
	// socket per wake (level-triggered), no goroutine per stream.
	runtime.LockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		panic(err)
	}
	streams := make([]*stream, 0, n)
	byFd := map[int]*stream{}
	answeredCount := 0
	answered := func(s *stream) {
		if s.answered {
			return
		}
		s.answered = true
		answeredCount++
		if answeredCount == n && a.Mode != "connect" {
			ok := 0
			for _, x := range streams {
				if x.status == 200 {
					ok++
				}
			}
			emit(map[string]any{"event": "connected", "ok": ok, "failed": n - ok, "ttfb": ttfb})
		}
	}
	closeStream := func(s *stream, why string) {
		if s.fd < 0 {
			return
		}
		if why != "" && !s.inBody && s.err == "" {
			s.err = why
		}
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
		syscall.Close(s.fd)
		delete(byFd, s.fd)
		s.fd = -1
		s.ended = true
		answered(s)
	}
	// Opens a stream that sends req once connected. The caller keeps it.
	open := func(req []byte) *stream {
		s := &stream{fd: -1, startAt: nowUs(), req: req}
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			s.err = errnoName(err.(syscall.Errno))
			s.ended = true
			answered(s)
			return s
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		s.fd = fd
		byFd[fd] = s
		if err := syscall.Connect(fd, sa); err != nil && err != syscall.EINPROGRESS {
			closeStream(s, errnoName(err.(syscall.Errno)))
			return s
		}
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(fd)})
		return s
	}

	// Batched wakes would add up to batchMs to every time to first byte a
	// connect run measures; its streams are few at a time, so it wakes per event.
	batchMs := 5
	if a.Mode == "connect" {
		batchMs = 0
	}
	if a.BatchMs != nil {
		batchMs = *a.BatchMs
	}
	events := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 64*1024)
	// One wake: waits up to timeoutMs, then sends the requests of streams that
	// connected and reads once from each readable one; after handles a stream
	// that took bytes or closed.
	poll := func(timeoutMs int, after func(*stream)) {
		k, err := syscall.EpollWait(ep, events, timeoutMs)
		waits++
		if err != nil && err != syscall.EINTR {
			panic(err)
		}
		if k > 0 && batchMs > 0 && k < len(events) {
			time.Sleep(time.Duration(batchMs) * time.Millisecond)
			k, _ = syscall.EpollWait(ep, events, 0)
			waits++
		}
		at := nowUs()
		for _, ev := range events[:max(k, 0)] {
			s := byFd[int(ev.Fd)]
			if s == nil {
				continue
			}
			if !s.inBody && s.head == nil && ev.Events&syscall.EPOLLOUT != 0 {
				// Connected (or not): send the request, then wait for the answer.
				if e, _ := syscall.GetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); e != 0 {
					closeStream(s, errnoName(syscall.Errno(e)))
					after(s)
					continue
				}
				if _, err := syscall.Write(s.fd, s.req); err != nil {
					closeStream(s, errnoName(err.(syscall.Errno)))
					after(s)
					continue
				}
				s.head = []byte{}
				syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, s.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: ev.Fd})
				continue
			}
			r, err := syscall.Read(s.fd, buf)
			reads++
			switch {
			case r > 0:
				s.data(buf[:r], at, answered)
			case r == 0:
				closeStream(s, "")
			case err == syscall.EAGAIN:
				continue
			default:
				closeStream(s, errnoName(err.(syscall.Errno)))
			}
			after(s)
		}
	}

	if a.Mode == "connect" {
		connect(a, request, open, closeStream, poll)
		return
	}

	perTick := max(1, int(math.Round(ramp/50)))
	nextTick := time.Now()
	for {
		if len(streams) < n && !time.Now().Before(nextTick) {
			for i := 0; i < perTick && len(streams) < n; i++ {
				streams = append(streams, open(request))
			}
			nextTick = nextTick.Add(20 * time.Millisecond)
		}
		select {
		case <-reports:
			report(streams)
			for _, s := range streams {
				if s.fd >= 0 {
					syscall.Close(s.fd)
				}
			}
			time.Sleep(100 * time.Millisecond)
			os.Exit(0)
		default:
		}
		poll(20, func(*stream) {})
	}
}

// The connect mode: Count streams opened at Rate per second, each closed once
// answered (its first body byte, or its first message); then one result line.
func connect(
	a args,
	request []byte,
	open func([]byte) *stream,
	closeStream func(*stream, string),
	poll func(int, func(*stream)),
) {
	count := max(1, a.Count)
	rate := a.Rate
	if rate <= 0 {
		rate = 100
	}
	firstMessage := a.CloseAfter == "firstMessage"
	var anchor *stream
	if a.ResumeBack > 0 {
		// One live stream whose latest id the resumes start from.
		anchor = open(request)
		anchor.wantsID = true
		until := time.Now().Add(15 * time.Second)
		for anchor.lastID == nil && time.Now().Before(until) {
			poll(20, func(*stream) {})
		}
		if anchor.lastID == nil {
			emit(map[string]any{"event": "result", "error": "the anchor stream received no message in 15 s"})
			os.Exit(0)
		}
		ttfb, ttfm, latency = newHistogram(), newHistogram(), newHistogram()
	}
	// A request whose Last-Event-ID is the anchor's latest id, every offset
	// ResumeBack lower; made again only when that id has moved.
	var madeFor, made []byte
	resumeRequest := func() []byte {
		if made != nil && bytes.Equal(madeFor, anchor.lastID) {
			return made
		}
		var id []map[string]any
		if err := json.Unmarshal(anchor.lastID, &id); err != nil {
			panic(fmt.Sprintf("loadgen-go: the anchor's id is not a JSON array: %s", anchor.lastID))
		}
		for _, e := range id {
			if o, ok := e["offset"].(float64); ok {
				e["offset"] = math.Max(0, o-float64(a.ResumeBack))
			}
		}
		v, _ := json.Marshal(id)
		head := request[:len(request)-2]
		madeFor = anchor.lastID
		made = append(append(append(append([]byte(nil), head...), "Last-Event-ID: "...), v...), "\r\n\r\n"...)
		return made
	}

	streams := make([]*stream, 0, count)
	done := 0
	var lastDoneAt int64
	finish := func(s *stream) {
		if s.done || s == anchor {
			return
		}
		s.done = true
		closeStream(s, "")
		done++
		lastDoneAt = nowUs()
	}
	after := func(s *stream) {
		switch {
		case s.done || s == anchor:
		case s.fd < 0, s.inBody && s.status != 200:
			finish(s)
		case firstMessage && s.count > 0, !firstMessage && s.gotByte:
			finish(s)
		}
	}
	t0 := nowUs()
	deadline := time.Now().Add(time.Duration((float64(count)/rate + 30) * float64(time.Second)))
	for done < count && time.Now().Before(deadline) {
		due := min(count, int(float64(nowUs()-t0)/1e6*rate)+1)
		for len(streams) < due {
			req := request
			if anchor != nil {
				req = resumeRequest()
			}
			s := open(req)
			streams = append(streams, s)
			after(s)
		}
		// Wake at least every millisecond while streams are still to open.
		timeout := 20
		if len(streams) < count {
			timeout = 1
		}
		poll(timeout, after)
	}
	failed := 0
	for _, s := range streams {
		if s.status != 200 || firstMessage && s.count == 0 {
			failed++
		}
	}
	spanS := float64(lastDoneAt-t0) / 1e6
	var achieved any
	if spanS > 0 {
		achieved = float64(len(streams)-failed) / spanS
	}
	if anchor != nil && anchor.fd >= 0 {
		closeStream(anchor, "")
	}
	res := result(streams)
	delete(res, "counts")
	res["offered"] = a.Rate
	res["completed"] = len(streams) - failed
	res["failed"] = failed
	res["achievedPerSec"] = achieved
	emit(res)
	os.Exit(0)
}

var waits, reads int64

func report(streams []*stream) { emit(result(streams)) }

// The result line's fields for these streams.
func result(streams []*stream) map[string]any {
	counts := make([]int64, len(streams))
	statuses := map[string]int{}
	errs := []string{}
	seen := map[string]bool{}
	ended := 0
	var minCount any
	for i, s := range streams {
		counts[i] = s.count
		if minCount == nil || counts[i] < minCount.(int64) {
			minCount = counts[i]
		}
		statuses[strconv.Itoa(s.status)]++
		if s.err != "" && !seen[s.err] && len(errs) < 10 {
			seen[s.err] = true
			errs = append(errs, s.err)
		}
		if s.ended {
			ended++
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return map[string]any{
		"event": "result", "connections": len(streams), "counts": counts, "minCount": minCount,
		"statuses": statuses, "errors": errs, "ended": ended,
		"latency": latency, "ttfb": ttfb, "ttfm": ttfm, "sessions": 0,
		"epollWaits": waits, "reads": reads,
		"userCpuS":   float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6,
		"systemCpuS": float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6,
	}
}
