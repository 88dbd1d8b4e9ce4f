package stack_test

import (
	"fmt"

	"github.com/sqlwatch/sqlwatch/stack"
)

func ExampleFilter_Split() {
	frames := []stack.Frame{
		{Function: "github.com/sqlwatch/sqlwatch/driver.(*conn).BeginTx", File: "/go/pkg/mod/github.com/sqlwatch/sqlwatch@v0.1.0/driver/conn.go", Line: 58},
		{Function: "database/sql.(*DB).BeginTx", File: "/usr/local/go/src/database/sql/sql.go", Line: 1873},
		{Function: "gorm.io/gorm.(*DB).Begin", File: "/go/pkg/mod/gorm.io/gorm@v1.31.2/finisher_api.go", Line: 701},
		{Function: "example.com/shop/orders.(*Service).Place", File: "/src/shop/orders/orders.go", Line: 29},
		{Function: "main.main", File: "/src/shop/cmd/shop/main.go", Line: 49},
		{Function: "runtime.main", File: "/usr/local/go/src/runtime/proc.go", Line: 290},
	}
	origin, app, ok := stack.NewFilter().Split(frames)
	fmt.Println(ok, origin.Location())
	for _, fr := range app {
		fmt.Println(fr)
	}
	// Output:
	// true orders/orders.go:29
	// example.com/shop/orders.(*Service).Place (/src/shop/orders/orders.go:29)
	// main.main (/src/shop/cmd/shop/main.go:49)
}

// placeOrder stands for application code that begins a transaction; a
// driver wrapper would capture the stack there.
func placeOrder(s *stack.Stack) {
	s.Capture(0) // on the hot path: no allocation, no symbolization
}

func ExampleStack_Capture() {
	var s stack.Stack
	placeOrder(&s)

	// Later, when reporting a leak:
	origin, _, ok := stack.NewFilter().Resolve(&s)
	fmt.Println(ok, origin.Function)
	// Output:
	// true github.com/sqlwatch/sqlwatch/stack_test.placeOrder
}
