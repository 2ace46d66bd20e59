// promql-check parses PromQL expressions with Prometheus' own parser and reports every one that
// does not parse. Input on stdin: a JSON object {"name": "expression", ...}. Exit 1 on any error.
// Used by tests/integration/test_helm_chart.py for the chart's alert rules (hack/promql-check.sh).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	var exprs map[string]string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: reading stdin: %v\n", err)
		os.Exit(2)
	}
	names := make([]string, 0, len(exprs))
	for name := range exprs {
		names = append(names, name)
	}
	sort.Strings(names)
	p := parser.NewParser(parser.Options{})
	failed := 0
	for _, name := range names {
		expr, err := p.ParseExpr(exprs[name])
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Printf("%s: ok (%s)\n", name, expr.Type())
	}
	if failed > 0 {
		os.Exit(1)
	}
}
