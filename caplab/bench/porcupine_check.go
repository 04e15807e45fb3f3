// porcupine-check HISTORY.json TIMEOUT: checks a caplab-history/1 kv history with Porcupine
// (github.com/anishathalye/porcupine) and prints {"seconds": search time, "verdict": ...}.
// Built by caplab.bench.checker against a Porcupine source directory; not part of caplab.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type record struct {
	Client interface{}            `json:"client"`
	Input  map[string]interface{} `json:"input"`
	Output map[string]interface{} `json:"output"`
	Call   float64                `json:"call"`
	Return *float64               `json:"return"`
}

type input struct {
	op       int // 0 read, 1 write, 2 cas, 3 append
	key      string
	value    string
	expected string
}

type output struct {
	value   string
	ok      bool
	unknown bool
}

const missing = "\x00"

func canon(v interface{}) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var parts [][]porcupine.Operation
		for _, k := range keys {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() interface{} { return missing },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		st := state.(string)
		inp := in.(input)
		o := out.(output)
		switch inp.op {
		case 0:
			return o.unknown || o.value == st || (st == missing && (o.value == "null" || o.value == `""`)), st
		case 1:
			return true, inp.value
		case 2:
			swapped := st == inp.expected || (st == missing && inp.expected == "null")
			next := st
			if swapped {
				next = inp.value
			}
			return o.unknown || o.ok == swapped, next
		default:
			prefix := ""
			if st != missing {
				json.Unmarshal([]byte(st), &prefix)
			}
			var suffix string
			json.Unmarshal([]byte(inp.value), &suffix)
			return true, canon(prefix + suffix)
		}
	},
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var doc struct {
		Operations []record `json:"operations"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		panic(err)
	}
	ops := make([]porcupine.Operation, 0, len(doc.Operations))
	clients := map[string]int{}
	for _, r := range doc.Operations {
		in := input{key: fmt.Sprint(r.Input["key"]), value: canon(r.Input["value"]), expected: canon(r.Input["expected"])}
		switch r.Input["op"] {
		case "read", "get":
			in.op = 0
		case "write", "put":
			in.op = 1
		case "cas":
			in.op = 2
		case "append":
			in.op = 3
		}
		out := output{unknown: r.Return == nil || r.Output == nil}
		if !out.unknown {
			out.value = canon(r.Output["value"])
			ok, _ := r.Output["ok"].(bool)
			out.ok = ok
		}
		ret := int64(math.MaxInt64 / 2)
		if r.Return != nil {
			ret = int64(math.Round(*r.Return * 1e9))
		}
		c := fmt.Sprint(r.Client)
		if _, ok := clients[c]; !ok {
			clients[c] = len(clients)
		}
		ops = append(ops, porcupine.Operation{ClientId: clients[c], Input: in, Output: out, Call: int64(math.Round(r.Call * 1e9)), Return: ret})
	}
	start := time.Now()
	timeout, _ := time.ParseDuration(os.Args[2])
	result := porcupine.CheckOperationsTimeout(model, ops, timeout)
	seconds := time.Since(start).Seconds()
	verdict := map[porcupine.CheckResult]string{porcupine.Ok: "LINEARIZABLE", porcupine.Illegal: "NOT_LINEARIZABLE", porcupine.Unknown: "UNKNOWN"}[result]
	fmt.Printf("{\"seconds\": %.9f, \"verdict\": %q}\n", seconds, verdict)
}
