// otlpsink: the smallest real OTLP/HTTP trace receiver for the tests. It decodes each
// export request with the OpenTelemetry Collector's own pdata (protobuf or JSON, as
// the collector's otlpreceiver does) and appends it as one line of OTLP JSON (the
// collector's file exporter format) to the file it is given.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of the OTLP/HTTP endpoint")
	out := flag.String("out", "spans.jsonl", "file the spans are appended to, one export request a line")
	flag.Parse()

	file, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	writer := bufio.NewWriter(file)
	marshaler := ptrace.JSONMarshaler{}

	http.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		request := ptraceotlp.NewExportRequest()
		if r.Header.Get("Content-Type") == "application/json" {
			err = request.UnmarshalJSON(body)
		} else {
			err = request.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		line, err := marshaler.MarshalTraces(request.Traces())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		writer.Write(line)
		writer.WriteByte('\n')
		err = writer.Flush()
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		answer, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(answer)
	})

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The harness reads the bound address from the first line (port 0: a free port).
	fmt.Println(listener.Addr().String())
	log.Fatal(http.Serve(listener, nil))
}
