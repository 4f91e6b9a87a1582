// berth-streamclient: a CRI streaming client for the end-to-end tests, built on
// moby/spdystream (the SPDY library client-go, kubelet and crictl use), so
// Berth's server is checked against an implementation that is not its own.
//
//	berth-streamclient exec URL [-protocol P] [-stdin] [-stdout] [-stderr] [-tty] [-resize WxH]
//	    copies its stdin/stdout/stderr; exits with the remote exit code (v4+),
//	    prints the error stream to stderr as "error stream: ..."
//	berth-streamclient portforward URL -port N [-connections K]
//	    K connections in turn: each sends stdin's bytes, prints what comes back
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "berth-streamclient: "+format+"\n", args...)
	os.Exit(2)
}

// dial upgrades rawURL to SPDY/3.1 offering protocols; the chosen one comes back.
func dial(rawURL string, protocols []string) (*spdystream.Connection, string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		die("url: %v", err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		die("dial: %v", err)
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n", u.RequestURI(), u.Host)
	for _, p := range protocols {
		req += "X-Stream-Protocol-Version: " + p + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		die("write: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		die("response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(os.Stderr, "http %d: %s", resp.StatusCode, body)
		os.Exit(3)
	}
	sc, err := spdystream.NewConnection(&bufConn{conn, br}, false)
	if err != nil {
		die("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	return sc, resp.Header.Get("X-Stream-Protocol-Version")
}

func open(sc *spdystream.Connection, h http.Header) *spdystream.Stream {
	s, err := sc.CreateStream(h, nil, false)
	if err != nil {
		die("create stream %v: %v", h, err)
	}
	if err := s.WaitTimeout(10 * time.Second); err != nil {
		die("stream %v not answered: %v", h, err)
	}
	return s
}

func execMain(args []string) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	protocol := fs.String("protocol", "v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io", "offered, in order")
	stdin := fs.Bool("stdin", false, "")
	stdout := fs.Bool("stdout", false, "")
	stderr := fs.Bool("stderr", false, "")
	tty := fs.Bool("tty", false, "")
	resize := fs.String("resize", "", "WxH sent once the streams are up")
	fs.Parse(args[1:])
	sc, chosen := dial(args[0], strings.Split(*protocol, ","))
	fmt.Fprintf(os.Stderr, "protocol: %s\n", chosen)
	hdr := func(t string) http.Header { return http.Header{"streamType": {t}} }
	errStream := open(sc, hdr("error"))
	var in, out, serr, rs *spdystream.Stream
	if *stdin {
		in = open(sc, hdr("stdin"))
	}
	if *stdout {
		out = open(sc, hdr("stdout"))
	}
	if *stderr && !*tty {
		serr = open(sc, hdr("stderr"))
	}
	if *tty && chosen != "v2.channel.k8s.io" {
		rs = open(sc, hdr("resize"))
	}
	if rs != nil && *resize != "" {
		wh := strings.SplitN(*resize, "x", 2)
		w, _ := strconv.Atoi(wh[0])
		h, _ := strconv.Atoi(wh[1])
		b, _ := json.Marshal(map[string]int{"Width": w, "Height": h})
		rs.Write(b)
	}
	if in != nil {
		go func() {
			io.Copy(in, os.Stdin)
			in.Close()
		}()
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		s *spdystream.Stream
		w io.Writer
	}{{out, os.Stdout}, {serr, os.Stderr}} {
		if p.s == nil {
			continue
		}
		wg.Add(1)
		go func(s *spdystream.Stream, w io.Writer) {
			defer wg.Done()
			io.Copy(w, s)
		}(p.s, p.w)
	}
	msg, _ := io.ReadAll(errStream)
	wg.Wait()
	if len(msg) == 0 {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "error stream: %s\n", msg)
	var status struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Details struct {
			Causes []struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if json.Unmarshal(msg, &status) == nil {
		if status.Status == "Success" {
			os.Exit(0)
		}
		for _, c := range status.Details.Causes {
			if c.Reason == "ExitCode" {
				code, _ := strconv.Atoi(c.Message)
				os.Exit(code)
			}
		}
	}
	os.Exit(1)
}

func portForwardMain(args []string) {
	fs := flag.NewFlagSet("portforward", flag.ExitOnError)
	port := fs.Int("port", 0, "")
	connections := fs.Int("connections", 1, "")
	fs.Parse(args[1:])
	sc, _ := dial(args[0], []string{"portforward.k8s.io"})
	payload, _ := io.ReadAll(os.Stdin)
	failed := false
	for i := 0; i < *connections; i++ {
		h := http.Header{}
		h.Set("streamType", "error")
		h.Set("port", strconv.Itoa(*port))
		h.Set("requestID", strconv.Itoa(i))
		errStream := open(sc, h)
		errStream.Close()
		// Read beside the data, as client-go does: spdystream delivers a
		// stream's frames only while someone reads it.
		errc := make(chan []byte)
		go func() {
			msg, _ := io.ReadAll(errStream)
			errc <- msg
		}()
		h.Set("streamType", "data")
		data := open(sc, h)
		go func() {
			data.Write(payload)
			data.Close()
		}()
		got, _ := io.ReadAll(data)
		msg := <-errc
		fmt.Printf("%s", got)
		if len(msg) > 0 {
			fmt.Fprintf(os.Stderr, "error stream: %s\n", msg)
			failed = true
		}
	}
	sc.Close()
	if failed {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 3 {
		die("usage: berth-streamclient exec|portforward URL [flags]")
	}
	switch os.Args[1] {
	case "exec":
		execMain(os.Args[2:])
	case "portforward":
		portForwardMain(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
