package stack_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/stack"
)

func ExampleFrame_Location() {
	fr := stack.Frame{Function: "example.com/shop/orders.(*Service).Place", File: "/src/shop/orders/orders.go", Line: 29}
	fmt.Println(fr.Location())
	fmt.Println(fr)
	// Output:
	// orders/orders.go:29
	// example.com/shop/orders.(*Service).Place (/src/shop/orders/orders.go:29)
}

func ExampleDefaultLibraries() {
	libs := stack.DefaultLibraries()
	fmt.Println(slices.Contains(libs, "database/sql"), slices.Contains(libs, "gorm.io/gorm"), slices.Contains(libs, "main"))
	// Output:
	// true true false
}

// A report's origin is the innermost frame outside the libraries.
func TestSplitFindsTheApplicationsFrame(t *testing.T) {
	frames := []stack.Frame{
		{Function: "github.com/sqlwatch/sqlwatch/driver.(*conn).BeginTx", File: "/go/pkg/mod/github.com/sqlwatch/sqlwatch@v0.1.0/driver/conn.go", Line: 58},
		{Function: "database/sql.(*DB).BeginTx", File: "/usr/local/go/src/database/sql/sql.go", Line: 1873},
		{Function: "gorm.io/gorm.(*DB).Begin", File: "/go/pkg/mod/gorm.io/gorm@v1.31.2/finisher_api.go", Line: 701},
		{Function: "example.com/shop/orders.(*Service).Place", File: "/src/shop/orders/orders.go", Line: 29},
		{Function: "main.main", File: "/src/shop/cmd/shop/main.go", Line: 49},
		{Function: "runtime.main", File: "/usr/local/go/src/runtime/proc.go", Line: 290},
	}
	origin, app, ok := callstack.NewFilter().Split(frames)
	got := fmt.Sprint(ok, " ", origin.Location(), " ", app)
	want := "true orders/orders.go:29 [example.com/shop/orders.(*Service).Place (/src/shop/orders/orders.go:29) main.main (/src/shop/cmd/shop/main.go:49)]"
	if got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

// placeOrder stands for application code that begins a transaction; a
// driver wrapper would capture the stack there.
func placeOrder(s *callstack.Stack) {
	s.Capture(0) // on the hot path: no allocation, no symbolization
}

// A stack captured on the hot path resolves, later, to the caller.
func TestCaptureThenResolve(t *testing.T) {
	var s callstack.Stack
	placeOrder(&s)
	origin, _, ok := callstack.NewFilter().Resolve(&s)
	if want := "github.com/sqlwatch/sqlwatch/stack_test.placeOrder"; !ok || origin.Function != want {
		t.Errorf("got %v %s; want true %s", ok, origin.Function, want)
	}
}
