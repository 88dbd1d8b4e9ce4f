package driver

import (
	"database/sql/driver"

	"github.com/ngrok/sqlmw"
)

var _ driver.Result = result{}

// result routes a Result's methods through the interceptor; without one,
// the driver's Result is returned as it is.
type result struct {
	inner driver.Result
	ic    sqlmw.Interceptor
}

func wrapResult(r driver.Result, ic sqlmw.Interceptor) driver.Result {
	if r == nil {
		return nil
	}
	return result{r, ic}
}

func (r result) LastInsertId() (int64, error) { return r.ic.ResultLastInsertId(r.inner) }
func (r result) RowsAffected() (int64, error) { return r.ic.ResultRowsAffected(r.inner) }
